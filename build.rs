//! Records the triple this binary is built for: rustup names a toolchain directory after the
//! host triple (`stable-x86_64-unknown-linux-gnu`), which is the triple a native build of this
//! tool has, so finding an installed toolchain needs no process and no table of platforms.

fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=CARGO_WORKER_BUILD_HOST={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
