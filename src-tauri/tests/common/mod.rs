//! What the IPC test files share: calling a command through Tauri's mock IPC as the UI does.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test
#![allow(dead_code)] // each test file uses its own part

use serde_json::Value;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, INVOKE_KEY};
use tauri::webview::InvokeRequest;

/// The mock runtime's window.
pub type Window = tauri::WebviewWindow<tauri::test::MockRuntime>;

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
