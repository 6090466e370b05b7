//! Compiles the kernel sources (`kernels/*.cu`, included by `emu.cpp`) with the host C++
//! compiler, under `emulate.hpp`.

fn main() {
    cc::Build::new()
        .cpp(true)
        .file("emu.cpp")
        .include(".")
        .include("..")
        .define("LSHREC_EMULATE", "1")
        .flag("-std=c++17")
        .flag("-pthread")
        // No fused multiply-add: the host arithmetic stays the plain IEEE sequence of the source.
        .flag_if_supported("-ffp-contract=off")
        .opt_level(2)
        .compile("lshrec_kernel_emu");
    println!("cargo:rustc-link-lib=pthread");
    println!("cargo:rerun-if-changed=emu.cpp");
    println!("cargo:rerun-if-changed=emulate.hpp");
    for entry in std::fs::read_dir("..").expect("kernels/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "cu" || e == "cuh") {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
