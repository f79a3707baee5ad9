//! Rebuilds the hub when the embedded admin panel (`web/`) changes.

fn main() {
    println!("cargo:rerun-if-changed=web");
}
