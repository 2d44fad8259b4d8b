//! One process, one EAL: everything that needs a live EAL is checked in this single test
//! (EAL cannot be initialised twice in a process). Runs without hugepages or root-owned
//! devices: `--no-huge --no-shconf --no-pci` with `net_ring` (loopback) and `net_null`.

use dpdk_sys::{ring, Burst, Eal, Mempool, Port, PortConf};

#[test]
fn eal_ports_mbufs_rings_and_lcores() {
    let eal = Eal::init(&[
        "dpdk-sys-test",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-l",
        "0,1",
        "--file-prefix",
        "dpdksystest",
        "--log-level",
        "*:warning",
        "--vdev",
        "net_ring0",
        "--vdev",
        "net_null0",
    ])
    .expect("EAL init");
    // A second init is refused, not UB.
    let again = Eal::init(&["x"]).unwrap_err();
    assert!(again.msg.contains("already"), "{again}");

    assert_eq!(eal.lcore_count(), 2);
    assert_eq!(eal.worker_lcores(), vec![1]);
    assert!(dpdk_sys::tsc_hz() > 0);
    let t0 = dpdk_sys::tsc();
    assert!(dpdk_sys::tsc() >= t0);
    assert_eq!(dpdk_sys::lcore_id(), eal.main_lcore());

    // Errors carry DPDK's errno text.
    let e = eal.port_by_name("net_nosuch9").unwrap_err();
    assert!(e.errno > 0 && !e.msg.is_empty(), "{e}");

    let pool = Mempool::new("test_pool", 1023, 32, 2048 + 128, -1).expect("mempool");
    let initial = pool.avail_count();
    assert_eq!(initial, 1023);

    // Mbuf operations.
    {
        let mut m = pool.alloc().expect("alloc");
        assert!(m.is_empty());
        assert!(m.append(60));
        assert_eq!(m.len(), 60);
        m.data_mut().fill(0xab);
        // data()/len() read buf_addr, data_off and data_len in Rust (the shim's
        // offsets); headroom() asks DPDK: the two views must agree.
        let (p0, h0) = (m.data().as_ptr() as usize, m.headroom());
        assert!(m.prepend(14));
        assert_eq!(m.len(), 74);
        assert_eq!(p0 - m.data().as_ptr() as usize, 14);
        assert_eq!(h0 - m.headroom(), 14);
        assert_eq!(m.len(), m.pkt_len(), "one segment: data_len = pkt_len");
        // prepend/trim/pkt_len/is_contiguous work on the fields in Rust: DPDK's own
        // accessors must see the same mbuf.
        assert_eq!(m.dpdk_view(), (74, 1, 74, h0 as u16 - 14));
        assert!(m.adj(14));
        assert_eq!(
            m.dpdk_view(),
            (60, 1, 60, h0 as u16),
            "adj in Rust, as DPDK sees it"
        );
        assert_eq!(m.data()[0], 0xab);
        assert!(m.trim(10));
        assert_eq!(m.len(), 50);
        assert_eq!(m.dpdk_view(), (50, 1, 50, h0 as u16));
        assert!(!m.trim(51), "trim past the start must fail");
        assert_eq!(
            m.dpdk_view(),
            (50, 1, 50, h0 as u16),
            "a refused trim changes nothing"
        );
        assert!(m.prepend(h0), "the whole headroom can be taken");
        assert_eq!(m.dpdk_view(), (50 + h0 as u32, 1, 50 + h0 as u16, 0));
        assert!(!m.prepend(1), "no headroom left");
        assert!(m.adj(h0));
        assert!(!m.adj(51), "adj past the end must fail");
        assert!(!m.prepend(100_000), "prepend past the headroom must fail");
        assert!(m.is_contiguous());
        assert_eq!(pool.avail_count(), initial - 1);
    }
    assert_eq!(pool.avail_count(), initial, "dropping an Mbuf frees it");

    // Loopback through net_ring0: tx then rx returns the same bytes.
    let id = eal.port_by_name("net_ring0").expect("net_ring0");
    assert!(eal.port_count() >= 2);
    let conf = PortConf {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 128,
        tx_desc: 128,
        mtu: None,
        rss: false,
        promiscuous: true,
    };
    let mut port = Port::configure(id, &conf, &pool).expect("configure");
    port.start().expect("start");
    let mut rxq = port.take_rx_queue(0).expect("rx 0");
    assert!(
        port.take_rx_queue(0).is_none(),
        "a queue is handed out once"
    );
    assert!(port.take_rx_queue(1).is_none(), "no such queue");
    let mut txq = port.take_tx_queue(0).expect("tx 0");
    let mut b = Burst::new();
    for i in 0..8u8 {
        let mut m = pool.alloc().unwrap();
        assert!(m.append(64));
        m.data_mut().fill(i);
        b.push(m).unwrap();
    }
    assert_eq!(txq.tx_burst(&mut b), 8);
    assert!(b.is_empty());
    let mut r = Burst::new();
    let n = rxq.rx_burst(&mut r);
    assert_eq!(n, 8, "net_ring loops tx back to rx");
    for (i, m) in r.drain().enumerate() {
        assert_eq!(m.len(), 64);
        assert!(m.data().iter().all(|&x| x == i as u8));
    }
    let s = port.stats();
    assert_eq!((s.ipackets, s.opackets), (8, 8));
    let id = port.id();
    let from_thread = std::thread::spawn(move || dpdk_sys::port_stats(id))
        .join()
        .expect("stats thread");
    assert_eq!(
        from_thread, s,
        "port_stats from another thread reads the same"
    );
    assert_eq!(
        dpdk_sys::port_stats(u16::MAX),
        dpdk_sys::PortStats::default()
    );
    assert_eq!(dpdk_sys::port_link(id), port.link());
    assert!(port
        .xstats()
        .expect("xstats")
        .iter()
        .any(|(n, _)| !n.is_empty()));
    // A full burst refuses more, and a dropped Burst frees what it holds.
    let mut full = Burst::new();
    while !full.is_full() {
        full.push(pool.alloc().unwrap()).unwrap();
    }
    assert!(full.push(pool.alloc().unwrap()).is_err());
    drop(full);
    let _ = (rxq, txq);
    port.close().expect("close");

    // Typed rings: FIFO, full ring gives the item back, leftovers freed on drop.
    let (mut tx, mut rx) = ring::channel::<String>("test_ring", 4).expect("ring");
    assert!(ring::channel::<String>("bad", 3).is_err());
    for i in 0..3 {
        tx.send(Box::new(format!("m{i}"))).unwrap();
    }
    assert_eq!(
        *tx.send(Box::new("overflow".into())).unwrap_err(),
        "overflow"
    );
    assert_eq!(rx.len(), 3);
    assert_eq!(*rx.recv().unwrap(), "m0");
    drop((tx, rx));

    // By-value rings: no boxes, FIFO, full ring gives the value back.
    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    struct Notice {
        a: u32,
        b: [u8; 12],
    }
    assert!(ring::value_channel::<[u8; 3]>("bad_esize", 4).is_err());
    let (mut vp, mut vc) = ring::value_channel::<Notice>("test_values", 4).expect("value ring");
    for i in 0..3 {
        vp.send(Notice {
            a: i,
            b: [i as u8; 12],
        })
        .unwrap();
    }
    assert_eq!(vp.send(Notice { a: 9, b: [0; 12] }).unwrap_err().a, 9);
    assert_eq!(vc.recv(), Some(Notice { a: 0, b: [0; 12] }));
    assert_eq!(vc.recv().unwrap().b, [1; 12]);
    assert_eq!(vc.recv().unwrap().a, 2);
    assert_eq!(vc.recv(), None);
    drop((vp, vc));

    // Mbuf handoff rings: ownership moves, the port field travels, leftovers are freed.
    let (mut mp, mut mc) = ring::mbuf_channel("test_handoff", 4).expect("mbuf ring");
    for i in 0..3u16 {
        let mut m = pool.alloc().unwrap();
        m.set_port(i);
        mp.send(m).unwrap();
    }
    assert!(
        mp.send(pool.alloc().unwrap()).is_err(),
        "full ring gives the mbuf back"
    );
    assert_eq!(mc.recv().unwrap().port(), 0);
    assert_eq!(pool.avail_count(), initial - 2);
    drop((mp, mc));
    assert_eq!(
        pool.avail_count(),
        initial,
        "a dropped ring frees what it held"
    );

    // Launch a closure on worker lcore 1 and collect its return value.
    let (ctx, mut crx) = ring::channel::<u32>("test_lcore", 4).unwrap();
    let mut ctx = ctx;
    eal.launch(1, move || {
        let id = dpdk_sys::lcore_id();
        let _ = ctx.send(Box::new(id));
        42
    })
    .expect("launch");
    assert_eq!(eal.wait_all(), vec![(1, 42)]);
    assert_eq!(*crx.recv().expect("worker sent its lcore id"), 1);

    assert_eq!(pool.avail_count(), initial, "every mbuf came back");
    // Cleanup refuses while a ring or pool is alive (it would free them under us).
    // (Checked without consuming EAL: cleanup takes self, so only the last call is real.)
    drop(crx);
    drop(pool);
    eal.cleanup().expect("cleanup");
}
