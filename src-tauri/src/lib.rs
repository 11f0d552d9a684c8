//! The Palpal terminal app: one binary that is the community-center sign-up kiosk or the
//! pharmacy / convenience-store counter, as its configuration says.
//!
//! This crate only wires: it reads the configuration, opens the terminal's database, and
//! exposes thin commands to the UI in `ui/`. Rules live in the cores (`kiosk-core`,
//! `merchant-core`, `points-core`) and storage in `terminal-store`.

pub mod camera;
pub mod commands;
pub mod config;
pub mod counter;
pub mod error;
pub mod kiosk;
pub mod sync;
pub mod terminal;
pub mod watch;

pub use terminal::AppState;

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
        sync::sync_status,
        counter::scan_token,
        counter::redeem,
        counter::void_hold,
        counter::hold_receipt,
        counter::day_settlement,
        counter::export_settlement,
        camera::decode_frame,
        kiosk::kiosk_setup,
        kiosk::kiosk_today,
        kiosk::check_identity,
        kiosk::check_consent,
        kiosk::register,
        kiosk::issue_ticket,
        kiosk::member_card,
        kiosk::issue_member_card,
        kiosk::print_card,
        kiosk::speak,
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
