use clap::Parser;

fn main() {
    let cli = mhg::cli::Cli::parse();
    std::process::exit(mhg::cli::run(cli));
}
