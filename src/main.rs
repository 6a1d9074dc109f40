use clap::Parser;

fn main() {
    let cli = prism::cli::Cli::parse();
    std::process::exit(prism::cli::run(cli));
}
