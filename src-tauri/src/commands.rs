//! The commands the UI invokes: each a few lines that hand a flow of `terminal-app` to a
//! thread of Tauri's blocking pool (or await an async one) and return its result or its
//! `{code, message}`. No command runs on the main thread, which paints the window: Tauri runs a
//! command declared without `async` there, so every one here is `async`.

use tauri::{AppHandle, Manager as _, Runtime, State};
use terminal_app::commands::{MemberView, PairedWatch, TerminalInfo, WatchSynced};
use terminal_app::counter::{Exported, ReceiptView, Redeemed, Scanned, SettlementView, Voided};
use terminal_app::error::{CommandError, Lang};
use terminal_app::kiosk::{
    CardView, ConsentInput, ContactInput, IdentityChecked, KioskSetup, Printed, Registered, Spoken,
    TicketView,
};
use terminal_app::replace::ReplacementAllowed;
use terminal_app::setup::{OfferRead, Provisioned};
use terminal_app::sync::{BackgroundSync, SyncStatus};
use terminal_app::watch::{WatchChoice, WatchRadio};
use terminal_app::{commands, counter, kiosk, replace, setup, sync, AppState};
use terminal_store::ConfirmedEnrollment;

use terminal_app::commands::ApplicantInput;

/// Runs `flow` on Tauri's blocking pool with the app's handle (its managed state), and
/// answers what it answers. A flow that panicked is answered `internal`.
async fn off_main<R: Runtime, T: Send + 'static>(
    app: AppHandle<R>,
    flow: impl FnOnce(&AppHandle<R>) -> Result<T, CommandError> + Send + 'static,
) -> Result<T, CommandError> {
    let lang = app.state::<AppState>().lang();
    tauri::async_runtime::spawn_blocking(move || flow(&app))
        .await
        .unwrap_or_else(|panic| Err(CommandError::internal(lang, &panic.to_string())))
}

#[tauri::command]
pub async fn terminal_info<R: Runtime>(app: AppHandle<R>) -> Result<TerminalInfo, CommandError> {
    off_main(app, |app| commands::terminal_info(&app.state())).await
}

#[tauri::command]
pub async fn set_language<R: Runtime>(
    app: AppHandle<R>,
    language: Lang,
) -> Result<Lang, CommandError> {
    off_main(app, move |app| {
        commands::set_language(&app.state(), language)
    })
    .await
}

#[tauri::command]
pub async fn list_enrollments_today<R: Runtime>(
    app: AppHandle<R>,
) -> Result<Vec<ConfirmedEnrollment>, CommandError> {
    off_main(app, |app| commands::list_enrollments_today(&app.state())).await
}

#[tauri::command]
pub async fn find_member<R: Runtime>(
    app: AppHandle<R>,
    member_no: String,
) -> Result<MemberView, CommandError> {
    off_main(app, move |app| {
        commands::find_member(&app.state(), member_no)
    })
    .await
}

#[tauri::command]
pub async fn scan_watches(
    state: State<'_, AppState>,
    radio: State<'_, WatchRadio>,
) -> Result<Vec<WatchChoice>, CommandError> {
    commands::scan_watches(&state, &radio).await
}

#[tauri::command]
pub async fn sync_watch(
    state: State<'_, AppState>,
    radio: State<'_, WatchRadio>,
    member_no: String,
    address: String,
    token: Option<String>,
) -> Result<WatchSynced, CommandError> {
    commands::sync_watch(&state, &radio, member_no, address, token).await
}

#[tauri::command]
pub async fn pair_watch(
    state: State<'_, AppState>,
    radio: State<'_, WatchRadio>,
    op_id: String,
    address: String,
) -> Result<PairedWatch, CommandError> {
    commands::pair_watch(&state, &radio, op_id, address).await
}

#[tauri::command]
pub async fn sync_status<R: Runtime>(app: AppHandle<R>) -> Result<SyncStatus, CommandError> {
    off_main(app, |app| {
        sync::sync_status(&app.state(), &app.state::<BackgroundSync>())
    })
    .await
}

#[tauri::command]
pub async fn send_now<R: Runtime>(app: AppHandle<R>) -> Result<(), CommandError> {
    off_main(app, |app| {
        sync::send_now(&app.state(), &app.state::<BackgroundSync>())
    })
    .await
}

#[tauri::command]
pub async fn scan_token<R: Runtime>(
    app: AppHandle<R>,
    token: String,
) -> Result<Scanned, CommandError> {
    off_main(app, move |app| counter::scan_token(&app.state(), token)).await
}

#[tauri::command]
pub async fn redeem<R: Runtime>(
    app: AppHandle<R>,
    token: String,
    amount: u64,
    pin: Option<String>,
) -> Result<Redeemed, CommandError> {
    off_main(app, move |app| {
        counter::redeem(&app.state(), token, amount, pin)
    })
    .await
}

#[tauri::command]
pub async fn void_hold<R: Runtime>(
    app: AppHandle<R>,
    hold_id: String,
) -> Result<Voided, CommandError> {
    off_main(app, move |app| counter::void_hold(&app.state(), hold_id)).await
}

#[tauri::command]
pub async fn hold_receipt<R: Runtime>(
    app: AppHandle<R>,
    hold_id: String,
    print: bool,
) -> Result<ReceiptView, CommandError> {
    off_main(app, move |app| {
        counter::hold_receipt(&app.state(), hold_id, print)
    })
    .await
}

#[tauri::command]
pub async fn day_settlement<R: Runtime>(
    app: AppHandle<R>,
    day: Option<String>,
) -> Result<SettlementView, CommandError> {
    off_main(app, move |app| counter::day_settlement(&app.state(), day)).await
}

#[tauri::command]
pub async fn export_settlement<R: Runtime>(
    app: AppHandle<R>,
    day: Option<String>,
) -> Result<Exported, CommandError> {
    off_main(app, move |app| {
        counter::export_settlement(&app.state(), day)
    })
    .await
}

#[tauri::command]
pub async fn kiosk_setup<R: Runtime>(app: AppHandle<R>) -> Result<KioskSetup, CommandError> {
    off_main(app, |app| kiosk::kiosk_setup(&app.state())).await
}

#[tauri::command]
pub async fn kiosk_today<R: Runtime>(
    app: AppHandle<R>,
) -> Result<Vec<ConfirmedEnrollment>, CommandError> {
    off_main(app, |app| kiosk::kiosk_today(&app.state())).await
}

#[tauri::command]
pub async fn check_identity<R: Runtime>(
    app: AppHandle<R>,
    applicant: ApplicantInput,
) -> Result<IdentityChecked, CommandError> {
    off_main(app, move |app| {
        let sync = app.try_state::<BackgroundSync>();
        kiosk::check_identity(&app.state(), sync.as_deref(), applicant)
    })
    .await
}

#[tauri::command]
pub async fn check_consent<R: Runtime>(
    app: AppHandle<R>,
    consents: Vec<ConsentInput>,
) -> Result<(), CommandError> {
    off_main(app, move |app| kiosk::check_consent(&app.state(), consents)).await
}

#[tauri::command]
pub async fn register<R: Runtime>(
    app: AppHandle<R>,
    applicant: ApplicantInput,
    consents: Vec<ConsentInput>,
    contact: Option<ContactInput>,
) -> Result<Registered, CommandError> {
    off_main(app, move |app| {
        kiosk::register(&app.state(), applicant, consents, contact)
    })
    .await
}

#[tauri::command]
pub async fn issue_ticket<R: Runtime>(
    app: AppHandle<R>,
    applicant: ApplicantInput,
) -> Result<TicketView, CommandError> {
    off_main(app, move |app| kiosk::issue_ticket(&app.state(), applicant)).await
}

#[tauri::command]
pub async fn member_card<R: Runtime>(
    app: AppHandle<R>,
    op_id: String,
) -> Result<CardView, CommandError> {
    off_main(app, move |app| kiosk::member_card(&app.state(), op_id)).await
}

#[tauri::command]
pub async fn issue_member_card<R: Runtime>(
    app: AppHandle<R>,
    op_id: String,
    pin: String,
    pin_again: String,
) -> Result<CardView, CommandError> {
    off_main(app, move |app| {
        let sync = app.try_state::<BackgroundSync>();
        kiosk::issue_member_card(&app.state(), sync.as_deref(), op_id, pin, pin_again)
    })
    .await
}

#[tauri::command]
pub async fn print_card<R: Runtime>(
    app: AppHandle<R>,
    op_id: String,
) -> Result<Printed, CommandError> {
    off_main(app, move |app| kiosk::print_card(&app.state(), op_id)).await
}

#[tauri::command]
pub async fn speak<R: Runtime>(
    app: AppHandle<R>,
    text: String,
    volume: u32,
    speed: u32,
) -> Result<Spoken, CommandError> {
    off_main(app, move |app| {
        kiosk::speak(&app.state(), text, volume, speed)
    })
    .await
}

#[tauri::command]
pub async fn read_enrollment_offer<R: Runtime>(
    app: AppHandle<R>,
    text: String,
) -> Result<OfferRead, CommandError> {
    off_main(app, move |app| {
        setup::read_enrollment_offer(&app.state(), text)
    })
    .await
}

#[tauri::command]
pub async fn provision_terminal<R: Runtime>(
    app: AppHandle<R>,
    text: String,
) -> Result<Provisioned, CommandError> {
    off_main(app, move |app| {
        let sync = app.try_state::<BackgroundSync>();
        setup::provision_terminal(&app.state(), sync.as_deref(), text)
    })
    .await
}

#[tauri::command]
pub async fn find_card_replacement<R: Runtime>(
    app: AppHandle<R>,
    applicant: ApplicantInput,
) -> Result<ReplacementAllowed, CommandError> {
    off_main(app, move |app| {
        replace::find_card_replacement(&app.state(), applicant)
    })
    .await
}

#[tauri::command]
pub async fn replace_lost_card<R: Runtime>(
    app: AppHandle<R>,
    applicant: ApplicantInput,
    pin: String,
    pin_again: String,
) -> Result<CardView, CommandError> {
    off_main(app, move |app| {
        replace::replace_lost_card(&app.state(), applicant, pin, pin_again)
    })
    .await
}

#[tauri::command]
pub async fn print_replacement_card<R: Runtime>(
    app: AppHandle<R>,
    member_no: String,
) -> Result<Printed, CommandError> {
    off_main(app, move |app| {
        replace::print_replacement_card(&app.state(), member_no)
    })
    .await
}
