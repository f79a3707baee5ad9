//! Rebuilds the hub when the embedded admin panel (`web/`) or the embedded
//! database migrations (`migrations/`) change.

fn main() {
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=migrations");
}
