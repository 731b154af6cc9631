use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = mhg::cli::Cli::parse();
    std::process::exit(mhg::cli::run(cli));
}
