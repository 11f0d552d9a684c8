//! What the IPC test files share: the app on Tauri's mock runtime over a terminal in a folder,
//! and calling a command through its IPC as the UI does.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test
#![allow(dead_code)] // each test file uses its own part

use serde_json::Value;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, INVOKE_KEY};
use tauri::webview::InvokeRequest;

/// The mock runtime's window.
pub type Window = tauri::WebviewWindow<tauri::test::MockRuntime>;

/// The app with the terminal configured by `config` (its paths relative to `dir`), on the
/// mock runtime with every command, and its main window.
pub fn window(dir: &std::path::Path, config: &str) -> Window {
    let config = palpal_app::config::TerminalConfig::parse(config, dir).unwrap();
    let state = palpal_app::AppState::ready(palpal_app::terminal::Terminal::open(config).unwrap());
    let app = tauri::test::mock_builder()
        .manage(state)
        .invoke_handler(palpal_app::invoke_handler())
        .build(tauri::test::mock_context(tauri::test::noop_assets()))
        .unwrap();
    tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap()
}

/// [`window`] over a terminal in a new temporary folder, kept as long as the folder.
pub fn app(config: &str) -> (tempfile::TempDir, Window) {
    let dir = tempfile::tempdir().unwrap();
    let w = window(dir.path(), config);
    (dir, w)
}

/// Invokes `cmd` with `args`: the command's answer, or the `{code, message}` it refused with.
pub fn call(webview: &Window, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        webview,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<Value>().unwrap())
}
