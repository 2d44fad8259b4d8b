//! The waypoint role: sequences of frames and commands (format: `aves_fuzz::records`).
//! First byte: bit 0 selects headers-only (`H`) authentication. Besides the checks of
//! `run_role`, every tunnel packet the waypoint sends must decapsulate with the keys of
//! the gateway it is addressed to.
#![no_main]

use aves_dataplane::pipeline::tunnel::AVES_UDP_PORT;
use aves_dataplane::pipeline::waypoint::Waypoint;
use aves_fuzz::io::FuzzIo;
use aves_fuzz::records::{run_role, TunnelWrap};
use aves_fuzz::setup;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let cfg = setup::waypoint(sel & 1 == 1);
    let mut role = Waypoint::new(&cfg).expect("waypoint config");
    let mut io = FuzzIo::new(setup::port_infos(&cfg.router), AVES_UDP_PORT, 0, 1);
    let wrap = TunnelWrap {
        dst: setup::ADDRS[6],
        port: AVES_UDP_PORT,
        key: setup::keyring().sign_key().expect("key").clone(),
        sources: [
            setup::ADDRS[2],
            setup::ADDRS[3],
            setup::ADDRS[4],
            setup::ADDRS[0],
        ],
    };
    // What the gateways verify with: tunnel packets must pass.
    let gateways = [
        (setup::ADDRS[6], setup::keyring()),
        (setup::ADDRS[7], setup::keyring_rotated()),
    ];
    run_role(&mut role, &mut io, rest, &wrap, false, Some(&gateways));
});
