//! The gateway role: sequences of frames and commands (format: `aves_fuzz::records`);
//! `TUNNEL` records arrive as authentic tunnel packets from the waypoint pool.
//! First byte: bit 0 runs the role as one of two lcores (bit 1: which), so flows owned
//! by the other lcore are handed off; bit 2 gives the gateway a keyring mid-rollover
//! (key 7 signs, key 1 still verifies); bit 3 signs `TUNNEL` records with key 7.
#![no_main]

use aves_dataplane::pipeline::gateway::Gateway;
use aves_dataplane::pipeline::tunnel::AVES_UDP_PORT;
use aves_fuzz::bufs::CountedBuf;
use aves_fuzz::io::FuzzIo;
use aves_fuzz::records::{run_role, TunnelWrap};
use aves_fuzz::setup;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let lcores = if sel & 1 == 1 { 2 } else { 1 };
    let lcore = usize::from((sel >> 1) & 1) % lcores;
    let cfg = setup::gateway(lcore, lcores, sel & 4 != 0);
    let mut role: Gateway<CountedBuf> = Gateway::new(&cfg).expect("gateway config");
    let mut io = FuzzIo::new(setup::port_infos(&cfg.router), AVES_UDP_PORT, lcore, lcores);
    let signer = if sel & 8 != 0 {
        setup::keyring_rotated()
    } else {
        setup::keyring()
    };
    let wrap = TunnelWrap {
        dst: setup::ADDRS[6],
        port: AVES_UDP_PORT,
        key: signer.sign_key().expect("key").clone(),
        sources: [
            setup::ADDRS[2],
            setup::ADDRS[3],
            setup::ADDRS[4],
            setup::ADDRS[5],
        ],
    };
    run_role(&mut role, &mut io, rest, &wrap, true, None);
});
