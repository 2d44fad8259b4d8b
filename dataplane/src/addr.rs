//! Address types shared by configuration, commands and pipelines.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An Ethernet MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00 (the unknown target hardware address in an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// True for the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// True when the group bit is set (multicast, including broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Error parsing an address or prefix from text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrParseError(pub String);

impl fmt::Display for AddrParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddrParseError {}

impl FromStr for MacAddr {
    type Err = AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            AddrParseError(format!(
                "`{s}` is not a MAC address (expected aa:bb:cc:dd:ee:ff)"
            ))
        };
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

/// An IPv4 prefix: an address and a prefix length. The address keeps its host bits (an
/// interface address `10.0.0.1/24` is a `Ipv4Cidr` too); [`Ipv4Cidr::network`] clears them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Cidr {
    /// A prefix; `None` when `len > 32`.
    pub const fn new(addr: Ipv4Addr, len: u8) -> Option<Self> {
        if len > 32 {
            None
        } else {
            Some(Ipv4Cidr { addr, len })
        }
    }
    /// The address as given (host bits kept).
    pub const fn addr(&self) -> Ipv4Addr {
        self.addr
    }
    /// The prefix length, 0..=32.
    // A prefix length, not a container size: an `is_empty` would mean nothing.
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(&self) -> u8 {
        self.len
    }
    /// The netmask as a host-order integer.
    pub const fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }
    /// The prefix with host bits cleared.
    pub fn network(&self) -> Ipv4Cidr {
        Ipv4Cidr {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            len: self.len,
        }
    }
    /// The directed broadcast address of the prefix.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
    /// True when `ip` is inside the prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask() == 0
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            AddrParseError(format!(
                "`{s}` is not an IPv4 prefix (expected a.b.c.d/len)"
            ))
        };
        let (a, l) = s.split_once('/').ok_or_else(err)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| err())?;
        let len: u8 = l.parse().map_err(|_| err())?;
        Ipv4Cidr::new(addr, len).ok_or_else(err)
    }
}

/// An inclusive range of IPv4 addresses, e.g. a waypoint's address pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Range {
    /// First address.
    pub first: Ipv4Addr,
    /// Last address (≥ first).
    pub last: Ipv4Addr,
}

impl Ipv4Range {
    /// A range; `None` when `last < first`.
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Option<Self> {
        (u32::from(first) <= u32::from(last)).then_some(Ipv4Range { first, last })
    }
    /// True when `ip` is inside the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let v = u32::from(ip);
        u32::from(self.first) <= v && v <= u32::from(self.last)
    }
    /// Number of addresses.
    pub fn count(&self) -> u64 {
        u64::from(u32::from(self.last) - u32::from(self.first)) + 1
    }
}

impl FromStr for Ipv4Range {
    type Err = AddrParseError;
    /// `a.b.c.d-e.f.g.h` or a prefix `a.b.c.d/len` (all its addresses).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            AddrParseError(format!(
                "`{s}` is not an address range (expected a.b.c.d-e.f.g.h or a.b.c.d/len)"
            ))
        };
        if let Some((a, b)) = s.split_once('-') {
            let first: Ipv4Addr = a.trim().parse().map_err(|_| err())?;
            let last: Ipv4Addr = b.trim().parse().map_err(|_| err())?;
            Ipv4Range::new(first, last).ok_or_else(err)
        } else {
            let c: Ipv4Cidr = s.parse().map_err(|_| err())?;
            let n = c.network();
            Ipv4Range::new(n.addr(), c.broadcast()).ok_or_else(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_contain() {
        let c: Ipv4Cidr = "10.1.2.3/24".parse().unwrap();
        assert_eq!(c.network().to_string(), "10.1.2.0/24");
        assert!(c.contains("10.1.2.200".parse().unwrap()));
        assert!(!c.contains("10.1.3.1".parse().unwrap()));
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert!("1.2.3.4/33".parse::<Ipv4Cidr>().is_err());
        assert!("1.2.3.4".parse::<Ipv4Cidr>().is_err());
        let r: Ipv4Range = "192.0.2.10-192.0.2.17".parse().unwrap();
        assert_eq!(r.count(), 8);
        assert!("192.0.2.17-192.0.2.10".parse::<Ipv4Range>().is_err());
        let r: Ipv4Range = "192.0.2.0/29".parse().unwrap();
        assert_eq!(r.count(), 8);
        let m: MacAddr = "02:00:00:aa:bb:0c".parse().unwrap();
        assert_eq!(m.to_string(), "02:00:00:aa:bb:0c");
        assert!("02:00:00:aa:bb".parse::<MacAddr>().is_err());
        assert!("02:00:00:aa:bb:0c:01".parse::<MacAddr>().is_err());
    }
}
