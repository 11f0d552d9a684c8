//! The Palpal terminal app: one binary that is the community-center sign-up kiosk or the
//! pharmacy / convenience-store counter, as its configuration says.
//!
//! This crate only wires: it starts the terminal (`terminal-app`) and exposes its flows to the
//! UI in `ui/` as thin async commands (`commands`), and the camera's frames (`camera`). The
//! flows live in `terminal-app`, rules in the cores (`kiosk-core`, `merchant-core`,
//! `points-core`) and storage in `terminal-store`.

pub mod camera;
pub mod commands;

pub use terminal_app::{config, error, sync, terminal, watch, AppState};

/// The commands the UI may invoke.
pub fn invoke_handler<R: tauri::Runtime>(
) -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        commands::terminal_info,
        commands::set_language,
        commands::list_enrollments_today,
        commands::find_member,
        commands::scan_watches,
        commands::sync_watch,
        commands::pair_watch,
        commands::sync_status,
        commands::send_now,
        commands::scan_token,
        commands::redeem,
        commands::void_hold,
        commands::hold_receipt,
        commands::day_settlement,
        commands::export_settlement,
        camera::decode_frame,
        commands::kiosk_setup,
        commands::kiosk_today,
        commands::check_identity,
        commands::check_consent,
        commands::register,
        commands::issue_ticket,
        commands::member_card,
        commands::issue_member_card,
        commands::print_card,
        commands::speak,
        commands::read_enrollment_offer,
        commands::provision_terminal,
        commands::find_card_replacement,
        commands::replace_lost_card,
        commands::print_replacement_card,
    ]
}

/// Runs the app with the configuration found from the command line and the environment.
pub fn run() {
    let args: Vec<String> = std::env::args().collect();
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")));
    let path =
        config::TerminalConfig::locate(&args, std::env::var("PALPAL_CONFIG").ok(), config_home);
    let state = AppState::start(path);
    let background = sync::BackgroundSync::new(&state);
    background.spawn();
    let result = tauri::Builder::default()
        .manage(state)
        .manage(background)
        .manage(watch::WatchRadio::default())
        .invoke_handler(invoke_handler())
        .setup(|app| {
            camera::allow_camera(app);
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("palpal-app: the window could not start: {e}");
        }
        std::process::exit(1);
    }
}
