fn main() {
    std::process::exit(allowscope::cli::main());
}
