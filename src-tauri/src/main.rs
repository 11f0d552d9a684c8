//! The terminal app's entry point; see the library for what it is.

fn main() {
    palpal_app::run();
}
