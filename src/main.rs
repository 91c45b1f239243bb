// mimalloc instead of glibc's allocator: a flow is allocated and freed for every connection of
// the capture, and glibc grew its heap in small steps that each cost page faults (measured when
// every flow stayed to the report: about 100,000 on the 1 GB bench capture against about 5,000,
// and a fifth of the run time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    allowscope::cli::main()
}
