//! Prints the explanation for a gold/pred pair: `cargo run -p stepwise-verify --example explain -- GOLD PRED`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: explain GOLD PRED");
        std::process::exit(2);
    }
    let ex = stepwise_verify::explain(&args[1], &args[2], &stepwise_verify::Options::default());
    println!("{ex:#?}");
}
