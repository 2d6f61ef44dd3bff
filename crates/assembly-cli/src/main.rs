//! `podcast-assemble`: the command line front of assembly-core.

fn main() {
    println!("podcast-assemble {}", env!("CARGO_PKG_VERSION"));
}
