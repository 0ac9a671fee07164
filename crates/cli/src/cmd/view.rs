//! `stepwise view`: the trace explorer, a local web page over the run store (read-only).

use crate::Global;
use crate::out::outln;
use anyhow::Context;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run store to explore, opened read-only: a SQLite file, or a PostgreSQL server
    /// (`postgres://user:password@host/db`, a session that cannot write).
    #[arg(long, value_name = "PATH|URL", env = stepwise_store::STORE_ENV, default_value_os_t = stepwise_store::default_store_path())]
    pub store: PathBuf,
    /// Port to listen on (0: any free port).
    #[arg(long, short, default_value_t = 8077)]
    pub port: u16,
    /// Address to bind; the default serves this machine only.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
}

pub fn run(args: Args, _g: &Global) -> anyhow::Result<()> {
    let spec = args.store.to_string_lossy();
    let store = stepwise_store::open_read_only(&spec);
    let store = if stepwise_store::pg::is_postgres_url(&spec) {
        // the URL may hold a password: the store's errors name it without one
        store.context("opening the run store read-only")?
    } else {
        store.with_context(|| format!("opening run store {spec} read-only"))?
    };
    let addr = SocketAddr::new(args.host, args.port);
    let rt = crate::cmd::runtime()?;
    let mut told = Ok(());
    rt.block_on(stepwise_view::serve(store, addr, |bound| {
        told = outln!("stepwise view: http://{bound}/ (Ctrl-C stops)");
    }))
    .with_context(|| format!("serving the explorer on {addr}"))?;
    told
}
