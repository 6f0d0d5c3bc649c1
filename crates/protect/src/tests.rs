use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg() -> Config {
    Config {
        untrusted: [Rate::per_second(10.0); 3],
        trusted: [Rate::per_second(1000.0); 3],
        trusted_sources: vec![Cidr::parse("52.112.0.0/14").unwrap()],
        ban_after: 20,
        ban_window: Duration::from_secs(10),
        ban_for: Duration::from_secs(60),
        max_sources: 4,
        ..Config::default()
    }
}

#[test]
fn a_source_within_its_budget_passes_and_its_burst_is_twice_the_rate() {
    let t0 = Instant::now();
    let mut l = Limiter::new(cfg(), t0);
    let a = ip("192.0.2.7");
    for _ in 0..20 {
        assert_eq!(l.check(t0, a, Class::Invite), Verdict::Pass);
    }
    assert_eq!(
        l.check(t0, a, Class::Invite),
        Verdict::Excess { trusted: false }
    );
    // Other classes have budgets of their own.
    assert_eq!(l.check(t0, a, Class::Register), Verdict::Pass);
    // 100 ms later one more INVITE token has come back (10/s).
    assert_eq!(l.check(t0 + ms(100), a, Class::Invite), Verdict::Pass);
    assert_eq!(
        l.check(t0 + ms(100), a, Class::Invite),
        Verdict::Excess { trusted: false }
    );
    // A steady 10/s is sustained forever.
    let mut at = t0 + ms(1000);
    for _ in 0..200 {
        assert_eq!(l.check(at, a, Class::Invite), Verdict::Pass);
        at += ms(100);
    }
}

#[test]
fn repeated_excess_bans_the_source_and_other_sources_are_unaffected() {
    let t0 = Instant::now();
    let mut l = Limiter::new(cfg(), t0);
    let flood = ip("192.0.2.2");
    let good = ip("192.0.2.3");
    let mut v = Vec::new();
    for i in 0..60 {
        v.push(l.check(t0 + ms(i), flood, Class::Invite));
        // The legitimate source's calls go through all along.
        if i % 10 == 0 {
            assert_eq!(l.check(t0 + ms(i), good, Class::Invite), Verdict::Pass);
        }
    }
    assert_eq!(v.iter().filter(|x| **x == Verdict::Pass).count(), 20);
    let first_ban = v.iter().position(|x| *x == Verdict::Banned).unwrap();
    assert_eq!(first_ban, 40, "20 passes, 20 strikes, then banned");
    assert_eq!(l.counters().bans, 1);
    assert!(l.drop_if_banned(t0 + Duration::from_secs(59), flood));
    l.tick(t0 + Duration::from_secs(1));
    assert_eq!(l.counters().banned_now, 1);
    assert_eq!(l.banned(t0 + Duration::from_secs(1), 10)[0].0, flood);
    // The ban ends.
    assert!(!l.drop_if_banned(t0 + Duration::from_secs(61), flood));
    assert_eq!(
        l.check(t0 + Duration::from_secs(61), flood, Class::Invite),
        Verdict::Pass
    );
}

#[test]
fn trusted_sources_have_their_own_budget_and_are_never_banned() {
    let t0 = Instant::now();
    let mut l = Limiter::new(cfg(), t0);
    let ms_proxy = ip("52.113.1.1");
    assert!(l.is_trusted(ms_proxy));
    assert!(l.is_trusted(ip("::ffff:52.113.1.1")), "IPv4-mapped too");
    let mut passed = 0;
    let mut excess = 0;
    for _ in 0..5000 {
        match l.check(t0, ms_proxy, Class::Invite) {
            Verdict::Pass => passed += 1,
            Verdict::Excess { trusted: true } => excess += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((passed, excess), (2000, 3000));
    assert_eq!(l.counters().bans, 0);
}

#[test]
fn a_scanner_is_recognised_case_insensitively_and_banned() {
    let t0 = Instant::now();
    let mut l = Limiter::new(cfg(), t0);
    assert!(l.is_scanner(b"friendly-scanner"));
    assert!(l.is_scanner(b"SIPVicious 0.3.4"));
    assert!(l.is_scanner(b"sipcli/v1.8"));
    assert!(!l.is_scanner(b"Yealink SIP-T46S 66.86.0.15"));
    assert!(!l.is_scanner(b""));
    let s = ip("203.0.113.9");
    l.scanner_seen(t0, s);
    assert!(l.drop_if_banned(t0 + ms(1), s));
    assert_eq!(l.check(t0 + ms(1), s, Class::Other), Verdict::Banned);
    let c = l.counters();
    assert_eq!((c.scanners, c.bans), (1, 1));
    // A trusted peer with an odd User-Agent is counted, never banned.
    l.scanner_seen(t0, ip("52.112.0.1"));
    assert!(!l.drop_if_banned(t0, ip("52.112.0.1")));
}

#[test]
fn the_table_is_bounded_and_new_sources_share_one_budget_when_it_is_full() {
    let t0 = Instant::now();
    let mut l = Limiter::new(cfg(), t0);
    // Four busy sources fill the table (max_sources = 4).
    for i in 1..=4 {
        let a = ip(&format!("198.51.100.{i}"));
        for _ in 0..5 {
            assert_eq!(l.check(t0, a, Class::Other), Verdict::Pass);
        }
    }
    // A spoofed flood of new addresses: one shared budget of 20, never banned.
    let mut passed = 0;
    for i in 0..1000u32 {
        let a = IpAddr::from((0xc000_0000u32 + i).to_be_bytes());
        match l.check(t0, a, Class::Invite) {
            Verdict::Pass => passed += 1,
            Verdict::Excess { trusted: false } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(passed, 20);
    assert_eq!(l.counters().sources, 4, "the table did not grow");
    assert_eq!(l.counters().overflow, 1000);
    assert_eq!(l.counters().bans, 0);
    // The known sources keep their budgets.
    assert_eq!(l.check(t0, ip("198.51.100.1"), Class::Other), Verdict::Pass);
    // Once they are idle, the table has room again.
    l.tick(t0 + Duration::from_secs(10));
    assert_eq!(l.counters().sources, 0);
}

#[test]
fn a_trusted_source_new_to_a_full_table_keeps_a_budget_of_its_own() {
    let t0 = Instant::now();
    let mut l = Limiter::new(cfg(), t0);
    for i in 1..=4 {
        let a = ip(&format!("198.51.100.{i}"));
        for _ in 0..5 {
            l.check(t0, a, Class::Other);
        }
    }
    // The table is full of busy sources; a Microsoft proxy appears.
    let ms_proxy = ip("52.113.1.1");
    for _ in 0..100 {
        assert_eq!(l.check(t0, ms_proxy, Class::Invite), Verdict::Pass);
    }
    assert_eq!(l.counters().overflow, 0);
    assert_eq!(l.counters().sources, 5);
}
