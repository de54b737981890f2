//! Network namespaces: the container's, checked, and SetupPairVeths.
//!
//! Threat model: the caller names a process (container view) whose network
//! namespace gets one end of a veth pair; the other end goes into the
//! container's network namespace. Whoever calls must never make iwsd touch
//! the host's network namespace (or another container's): no interface,
//! address, route or sysctl there, ever. Hence:
//!
//! * the container's network namespace (its init's) must not be the
//!   daemon's nor the host init's: a container that shares the host's
//!   network is refused outright (also for MountNfs, see `nfs.rs`);
//! * the target's network namespace must be neither the container's nor the
//!   host's, and must be owned by a user namespace *below* the container's
//!   (or by the container's own, when the container has one): a namespace
//!   owned by the host's user namespace cannot be shown to be the
//!   workspace's (it could be another container's), so it is refused;
//! * the caller must have authority over the user namespace that owns the
//!   target's network namespace (the kernel's rule for configuring it);
//! * every netlink socket is opened on a fresh thread after `setns` into
//!   the namespace it configures, and that thread's namespace is checked
//!   again before anything is sent (a netlink socket acts in the namespace
//!   it was created in);
//! * NAT (Gitpod's masquerade and DNAT) goes into an nf_tables table of
//!   iwsd's own in the container's namespace, never into one it did not make;
//! * the pair is created in one `RTM_NEWLINK` with `NLM_F_EXCL`, the peer
//!   placed in the target's namespace by fd, so neither name can replace an
//!   existing interface; a pair that exists already is refused; a failure
//!   after creation deletes the pair again.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sched::CloneFlags;
use rustix::fs::{Mode, OFlags};

use crate::authz::{Caller, PinnedCaller};
use crate::error::{Error, ErrorKind, Reason, Result};
use crate::nsthread::{on_fresh_thread, NsThread};
use crate::pidns::{ns_key, Container, PidStrategy};

/// The interface in the container's network namespace (Gitpod's name).
pub const CONTAINER_IF: &str = "veth0";
/// The interface in the target's network namespace (Gitpod's name: the
/// workspace's processes see it as their `eth0`).
pub const PEER_IF: &str = "eth0";
/// The container's own uplink, which NAT masquerades out of and DNATs from.
pub const UPLINK_IF: &str = "eth0";

/// The addresses of a pair: the network's first host address for the
/// container's end (the peer's gateway), the second for the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkspaceNet {
    pub container_addr: Ipv4Addr,
    pub peer_addr: Ipv4Addr,
    pub prefix: u8,
}

impl WorkspaceNet {
    /// Parses an IPv4 CIDR such as Gitpod's default `10.0.5.0/30`: a network
    /// address (no host bits) with room for two hosts (prefix 8..=30).
    pub fn parse(cidr: &str) -> Result<WorkspaceNet> {
        let bad = |why: &str| {
            Error::invalid(format!("workspace network {cidr:?}: {why}; give an IPv4 network such as 10.0.5.0/30"))
        };
        let (ip, prefix) = cidr.split_once('/').ok_or_else(|| bad("no /prefix"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("prefix is not a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("prefix must be 8 to 30 (room for two hosts)"));
        }
        let base = u32::from(ip);
        let mask = u32::MAX << (32 - prefix);
        if base & !mask != 0 {
            return Err(bad("host bits are set"));
        }
        Ok(WorkspaceNet { container_addr: Ipv4Addr::from(base + 1), peer_addr: Ipv4Addr::from(base + 2), prefix })
    }
}

/// What SetupPairVeths made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairOutcome {
    pub container_if: String,
    pub peer_if: String,
    pub net: WorkspaceNet,
}

fn denied(reason: Reason, message: impl Into<String>) -> Error {
    Error::because(ErrorKind::PermissionDenied, reason, message)
}

/// The daemon's own network namespace and the host init's (PID 1 in the
/// daemon's view), as (device, inode).
fn host_netns() -> Result<Vec<(u64, u64)>> {
    let mut keys = Vec::with_capacity(2);
    for path in ["/proc/self/ns/net", "/proc/1/ns/net"] {
        match rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => keys.push(ns_key(&fd)?),
            // PID 1 may be out of reach (hidepid); the daemon's own is enough then.
            Err(_) if path == "/proc/1/ns/net" => {}
            Err(e) => return Err(Error::internal(&format!("open({path})"), e)),
        }
    }
    Ok(keys)
}

/// The container's network namespace (its init's), refused when it is the
/// host's: a workspace that shares the host's network gets no network
/// operation at all.
pub(crate) fn container_netns(container: &Container) -> Result<OwnedFd> {
    let fd = container.init().open("ns/net", OFlags::RDONLY)?;
    if host_netns()?.contains(&ns_key(&fd)?) {
        return Err(Error::because(
            ErrorKind::FailedPrecondition,
            Reason::HostNetworkNamespace,
            "this workspace's container shares the host's network namespace; iwsd does network operations only for containers with a network namespace of their own",
        ));
    }
    container.init().ensure_alive()?;
    Ok(fd)
}

/// `setns` into `ns` and proof that the thread is there now.
pub(crate) fn enter_netns(t: &NsThread, ns: BorrowedFd<'_>, what: &str) -> Result<()> {
    t.setns(ns, CloneFlags::CLONE_NEWNET, what)?;
    let here = rustix::fs::open("/proc/thread-self/ns/net", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::internal("open(/proc/thread-self/ns/net)", e))?;
    if ns_key(&here)? != ns_key(ns)? {
        return Err(Error::internal("setns(net)", format!("the thread is not in the {what} network namespace")));
    }
    Ok(())
}

/// Creates the veth pair between the container's network namespace and the
/// target's (the process `pid`, container view), for `caller`; addresses
/// both ends from `net`, brings them (and the target's `lo`) up, routes the
/// target's default via the container's end, enables IPv4 forwarding in the
/// container's namespace. Nothing in any other namespace changes.
pub fn setup_pair_veths(
    container: &Container,
    strategy: PidStrategy,
    caller: Option<&Caller>,
    pid: i64,
    net: &WorkspaceNet,
) -> Result<PairOutcome> {
    let who = caller.map(|c| PinnedCaller::pin(container, c)).transpose()?;
    let cns = container_netns(container)?;
    let p = container.resolve(pid, strategy)?;
    let tns = p.open("ns/net", OFlags::RDONLY)?;
    let tkey = ns_key(&tns)?;
    if host_netns()?.contains(&tkey) {
        return Err(denied(
            Reason::HostNetworkNamespace,
            format!("pid {pid} is in the host's network namespace; give a process in a network namespace made inside the workspace"),
        ));
    }
    if tkey == ns_key(&cns)? {
        return Err(Error::because(
            ErrorKind::FailedPrecondition,
            Reason::SameNetworkNamespace,
            format!("pid {pid} is in the container's own network namespace; a pair needs a process in a network namespace of its own (e.g. started with `unshare -Urn`)"),
        ));
    }
    if !container.owns_below(&tns)? {
        return Err(denied(
            Reason::ForeignNetworkNamespace,
            format!("the network namespace of pid {pid} is not owned by a user namespace made inside the workspace, so it cannot be shown to be the workspace's; create it in a user namespace of the workspace's (e.g. `unshare -Urn`)"),
        ));
    }
    if let Some(who) = &who {
        let owner = crate::sys::ns_get_userns(&tns)
            .map_err(|e| Error::internal("ioctl(NS_GET_USERNS) on a network namespace", e))?;
        if !who.has_authority_over(&owner)? {
            return Err(denied(
                Reason::NotNetworkNamespaceOwner,
                "the target's network namespace is owned by a user namespace the caller neither owns nor is root in",
            ));
        }
    }
    let out = on_fresh_thread(|t| {
        enter_netns(t, cns.as_fd(), "container's")?;
        let mut c = Rtnl::open()?;
        enter_netns(t, tns.as_fd(), "target's")?;
        let mut peer = Rtnl::open()?;
        if c.link_index(CONTAINER_IF)?.is_some() {
            return Err(exists(format!("the workspace's network namespace already has an interface {CONTAINER_IF} (SetupPairVeths makes one pair per workspace)")));
        }
        if peer.link_index(PEER_IF)?.is_some() {
            return Err(exists(format!("the target's network namespace already has an interface {PEER_IF}")));
        }
        let mtu = c.link_mtu(UPLINK_IF)?;
        c.new_veth(CONTAINER_IF, PEER_IF, tns.as_fd(), mtu)?;
        let configured = (|| {
            let ci = c.link_index(CONTAINER_IF)?.ok_or_else(|| Error::internal("veth", "the new interface is gone"))?;
            let pi = peer.link_index(PEER_IF)?.ok_or_else(|| Error::internal("veth", "the new peer is gone"))?;
            c.add_addr(ci, net.container_addr, net.prefix)?;
            c.set_up(ci)?;
            peer.add_addr(pi, net.peer_addr, net.prefix)?;
            peer.set_up(pi)?;
            if let Some(lo) = peer.link_index("lo")? {
                peer.set_up(lo)?;
            }
            peer.default_route(net.container_addr)?;
            // Forwarding and NAT in the container's namespace, checked to be the thread's.
            enter_netns(t, cns.as_fd(), "container's")?;
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
                .map_err(|e| Error::internal("write(ip_forward) in the container's network namespace", e))?;
            // Last: the batch is atomic, so a failure leaves no rule behind.
            install_nat(UPLINK_IF, net.peer_addr)
        })();
        if let Err(e) = configured {
            // Deleting one end deletes the pair.
            let _ = c.del_link(CONTAINER_IF);
            return Err(e);
        }
        Ok(())
    });
    out?;
    p.ensure_alive()?;
    Ok(PairOutcome { container_if: CONTAINER_IF.into(), peer_if: PEER_IF.into(), net: *net })
}

fn exists(message: String) -> Error {
    Error::because(ErrorKind::FailedPrecondition, Reason::InterfaceExists, message)
}

/// A route netlink socket in the calling thread's network namespace.
struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    fn open() -> Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| Error::internal("socket(NETLINK_ROUTE)", e))?;
        sock.bind_auto().map_err(|e| Error::internal("bind(netlink)", e))?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(|e| Error::internal("connect(netlink)", e))?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends one request and collects the answers until its ACK (or DONE).
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut got = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "netlink message of length 0"));
                }
                off += (len + 3) & !3;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(got),
                        Some(_) => return Err(e.to_io()),
                    },
                    NetlinkPayload::Done(_) => return Ok(got),
                    NetlinkPayload::InnerMessage(inner) => got.push(inner),
                    _ => {}
                }
            }
        }
    }

    fn get_link(&mut self, name: &str) -> Result<Option<LinkMessage>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(v) => Ok(v.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(Error::internal(&format!("RTM_GETLINK({name})"), e)),
        }
    }

    fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        Ok(self.get_link(name)?.map(|l| l.header.index))
    }

    fn link_mtu(&mut self, name: &str) -> Result<Option<u32>> {
        Ok(self.get_link(name)?.and_then(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::Mtu(m) => Some(*m),
                _ => None,
            })
        }))
    }

    fn new_veth(&mut self, name: &str, peer: &str, peer_ns: BorrowedFd<'_>, mtu: Option<u32>) -> Result<()> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.into()));
        p.attributes.push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
            p.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL).map(|_| ()).map_err(|e| {
            if e.raw_os_error() == Some(libc::EEXIST) {
                exists(format!("an interface named {name} or {peer} appeared meanwhile; nothing was replaced"))
            } else {
                Error::internal("RTM_NEWLINK(veth)", e)
            }
        })
    }

    fn del_link(&mut self, name: &str) -> Result<()> {
        let Some(index) = self.link_index(name)? else { return Ok(()) };
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0).map(|_| ()).map_err(|e| Error::internal("RTM_DELLINK", e))
    }

    fn set_up(&mut self, index: u32) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(|_| ()).map_err(|e| Error::internal("RTM_SETLINK(up)", e))
    }

    fn add_addr(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
        self.request(RouteNetlinkMessage::NewAddress(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(|_| ())
            .map_err(|e| Error::internal("RTM_NEWADDR", e))
    }

    fn default_route(&mut self, gw: Ipv4Addr) -> Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Static;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_REPLACE)
            .map(|_| ())
            .map_err(|e| Error::internal("RTM_NEWROUTE(default)", e))
    }
}

// ---- NAT in the container's namespace (nf_tables over netlink) ----------------
//
// Gitpod's rules, in a table of iwsd's own (`ip iwsd`) so nothing of the
// container's is touched: masquerade what leaves through the container's
// `eth0`, and DNAT every TCP connection that arrives on it to the peer.

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFPROTO_IPV4: u8 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NLM_F_APPEND: u16 = 0x800;
/// The nf_tables table iwsd's rules live in.
pub const NAT_TABLE: &str = "iwsd";

/// A netlink attribute writer.
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn raw(mut self, kind: u16, data: &[u8]) -> Self {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        while self.0.len() % 4 != 0 {
            self.0.push(0);
        }
        self
    }
    fn str(self, kind: u16, s: &str) -> Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.raw(kind, &v)
    }
    fn be32(self, kind: u16, n: u32) -> Self {
        self.raw(kind, &n.to_be_bytes())
    }
    fn nest(self, kind: u16, inner: Attrs) -> Self {
        self.raw(kind | NLA_F_NESTED, &inner.0)
    }
}

/// One expression of a rule: `name` with its data attributes.
fn expr(name: &str, data: Option<Attrs>) -> Attrs {
    let a = Attrs::default().str(1, name); // NFTA_EXPR_NAME
    match data {
        Some(d) => a.nest(2, d), // NFTA_EXPR_DATA
        None => a,
    }
}

fn meta(key: u32) -> Attrs {
    expr("meta", Some(Attrs::default().be32(2, key).be32(1, 1))) // NFTA_META_KEY, NFTA_META_DREG = reg 1
}

fn cmp_eq(data: &[u8]) -> Attrs {
    // NFTA_CMP_SREG = reg 1, NFTA_CMP_OP = EQ, NFTA_CMP_DATA { NFTA_DATA_VALUE }
    expr("cmp", Some(Attrs::default().be32(1, 1).be32(2, 0).nest(3, Attrs::default().raw(1, data))))
}

fn rule(chain: &str, exprs: Vec<Attrs>) -> Attrs {
    let mut list = Attrs::default();
    for e in exprs {
        list = list.nest(1, e); // NFTA_LIST_ELEM
    }
    Attrs::default().str(1, NAT_TABLE).str(2, chain).nest(4, list) // NFTA_RULE_TABLE, _CHAIN, _EXPRESSIONS
}

fn base_chain(name: &str, hook: u32, priority: i32) -> Attrs {
    Attrs::default()
        .str(1, NAT_TABLE)
        .str(3, name)
        .nest(4, Attrs::default().be32(1, hook).be32(2, priority as u32)) // NFTA_CHAIN_HOOK { HOOKNUM, PRIORITY }
        .str(7, "nat") // NFTA_CHAIN_TYPE
}

fn nfmsg(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, attrs: &[u8]) {
    let len = 16 + 4 + attrs.len();
    buf.extend_from_slice(&(len as u32).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.push(family);
    buf.push(0); // NFNETLINK_V0
    let res = if kind == NFNL_MSG_BATCH_BEGIN || kind == NFNL_MSG_BATCH_END { NFNL_SUBSYS_NFTABLES } else { 0 };
    buf.extend_from_slice(&res.to_be_bytes());
    buf.extend_from_slice(attrs);
}

/// Sends `msgs` (type, flags, attributes) as one nf_tables batch on a
/// netfilter socket of the calling thread's network namespace and waits for
/// each one's ACK; the first error fails the batch (the kernel applies none
/// of it then).
fn nft_batch(msgs: &[(u16, u16, Attrs)]) -> io::Result<()> {
    let mut sock = Socket::new(netlink_sys::protocols::NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    let mut buf = Vec::new();
    let mut seq = 1u32;
    nfmsg(&mut buf, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, &[]);
    let first = seq + 1;
    for (kind, flags, attrs) in msgs {
        seq += 1;
        nfmsg(
            &mut buf,
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            seq,
            NFPROTO_IPV4,
            &attrs.0,
        );
    }
    let last = seq;
    seq += 1;
    nfmsg(&mut buf, NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq, 0, &[]);
    sock.send(&buf, 0)?;
    let mut acked = std::collections::HashSet::new();
    while acked.len() < (last - first + 1) as usize {
        let (data, _) = sock.recv_from_full()?;
        let mut off = 0;
        while off + 16 <= data.len() {
            let word = |at: usize| u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            let len = word(off) as usize;
            let kind = u16::from_ne_bytes([data[off + 4], data[off + 5]]);
            let s = word(off + 8);
            if len < 16 || off + len > data.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "short netlink message"));
            }
            if kind == 2 && len >= 20 {
                // NLMSG_ERROR: 0 is the ACK
                let code = word(off + 16) as i32;
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
                acked.insert(s);
            }
            off += (len + 3) & !3;
        }
    }
    Ok(())
}

/// Gitpod's NAT, in table `ip iwsd` of the calling thread's network
/// namespace (which must be the container's): masquerade out of `uplink`,
/// DNAT of every TCP connection arriving on it to `peer`. One atomic batch;
/// an existing table of that name is never changed.
fn install_nat(uplink: &str, peer: Ipv4Addr) -> Result<()> {
    let mut name = uplink.as_bytes().to_vec();
    name.push(0);
    let masq = rule("postrouting", vec![meta(7), cmp_eq(&name), expr("masq", None)]); // NFT_META_OIFNAME
    let dnat = rule(
        "prerouting",
        vec![
            meta(6), // NFT_META_IIFNAME
            cmp_eq(&name),
            meta(16), // NFT_META_L4PROTO
            cmp_eq(&[libc::IPPROTO_TCP as u8]),
            // NFTA_IMMEDIATE_DREG = reg 2, NFTA_IMMEDIATE_DATA { NFTA_DATA_VALUE }
            expr("immediate", Some(Attrs::default().be32(1, 2).nest(2, Attrs::default().raw(1, &peer.octets())))),
            // NFTA_NAT_TYPE = DNAT, NFTA_NAT_FAMILY = ipv4, NFTA_NAT_REG_ADDR_MIN = reg 2
            expr("nat", Some(Attrs::default().be32(1, 1).be32(2, NFPROTO_IPV4 as u32).be32(3, 2))),
        ],
    );
    nft_batch(&[
        (NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, Attrs::default().str(1, NAT_TABLE)),
        (NFT_MSG_NEWCHAIN, NLM_F_CREATE, base_chain("postrouting", 4, 100)), // NF_INET_POST_ROUTING, srcnat
        (NFT_MSG_NEWCHAIN, NLM_F_CREATE, base_chain("prerouting", 0, -100)), // NF_INET_PRE_ROUTING, dstnat
        (NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, masq),
        (NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, dnat),
    ])
    .map_err(|e| {
        if e.raw_os_error() == Some(libc::EEXIST) {
            exists(format!("the workspace's network namespace already has an nf_tables table ip {NAT_TABLE}"))
        } else {
            Error::internal("nf_tables batch (NAT rules)", e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_networks_parse() {
        let n = WorkspaceNet::parse("10.0.5.0/30").unwrap();
        assert_eq!(n.container_addr, Ipv4Addr::new(10, 0, 5, 1));
        assert_eq!(n.peer_addr, Ipv4Addr::new(10, 0, 5, 2));
        assert_eq!(n.prefix, 30);
        for bad in ["10.0.5.0", "10.0.5.1/30", "10.0.5.0/31", "10.0.5.0/7", "::1/64", "x/30", "10.0.5.0/x"] {
            assert!(WorkspaceNet::parse(bad).is_err(), "{bad}");
        }
    }
}
