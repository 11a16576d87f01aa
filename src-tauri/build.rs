//! Build script: generates the Tauri context (config, embedded ui/, icons) and the
//! permissions of the app's own commands, so capabilities can grant them one by one.

fn main() {
    let attributes =
        tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(&[
            "get_status",
            "sign_in",
            "list_history",
            "mark_read",
            "mark_all_read",
            "open_notification",
            "get_settings",
            "save_settings",
            "get_diagnostics",
            "send_test_notification",
            "reconnect_now",
            "open_window",
            "close_window",
            "get_project_policies",
            "set_project_policy",
            "take_shown_keys",
        ]));
    if let Err(e) = tauri_build::try_build(attributes) {
        // A build script reports failure by panicking; say why first.
        eprintln!("tauri-build failed: {e:#}");
        std::process::exit(1);
    }
}
