//! The router role: sequences of frames and commands (format: `aves_fuzz::records`).
//! First byte: bit 0 gives port 2 the minimum IPv4 MTU, 68, instead of 576.
#![no_main]

use aves_dataplane::pipeline::router::Router;
use aves_dataplane::pipeline::tunnel::AVES_UDP_PORT;
use aves_fuzz::io::FuzzIo;
use aves_fuzz::records::{run_role, TunnelWrap};
use aves_fuzz::setup;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let cfg = setup::router(if sel & 1 == 1 { 68 } else { 576 });
    let mut role = Router::new(&cfg).expect("router config");
    let mut io = FuzzIo::new(setup::port_infos(&cfg), AVES_UDP_PORT, 0, 1);
    let wrap = TunnelWrap {
        dst: setup::ADDRS[11],
        port: AVES_UDP_PORT,
        key: setup::keyring().sign_key().expect("key").clone(),
        sources: [
            setup::ADDRS[2],
            setup::ADDRS[3],
            setup::ADDRS[4],
            setup::ADDRS[0],
        ],
    };
    run_role(&mut role, &mut io, rest, &wrap, false, None);
});
