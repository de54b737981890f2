//! User/group id maps: the types, the policy that bounds them, and the one
//! validator every write goes through.
//!
//! Threat model: every field of a map comes from code the workspace's user
//! controls. A map that the kernel would accept can still hand the workspace
//! host ids it must never own (host root, another workspace's range). The
//! validator therefore checks every line's *whole* host range against the
//! policy, not only its start, and refuses overlaps and u32 wrap-around before
//! anything is written.

use std::fmt;

use crate::error::{Error, Result};

/// The kernel accepts at most 340 lines in a uid_map/gid_map (since 4.15).
pub const MAX_LINES: usize = 340;

/// The kernel refuses a map write of a page or more.
pub const MAX_MAP_BYTES: usize = 4096;

/// A policy holds at most this many user ranges.
pub const MAX_USER_RANGES: usize = 64;

/// One line of a map: `size` ids starting at `container_id` (inside the user
/// namespace) map to `size` ids starting at `host_id` (in the daemon's view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// A half-open range of host ids `[start, start + size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub start: u32,
    pub size: u32,
}

impl IdRange {
    pub const fn new(start: u32, size: u32) -> Self {
        IdRange { start, size }
    }

    /// One past the last id, computed without overflow.
    fn end(self) -> u64 {
        self.start as u64 + self.size as u64
    }

    /// Whether `[start, start + size)` lies wholly inside this range.
    pub fn contains_range(self, start: u32, size: u32) -> bool {
        let end = start as u64 + size as u64;
        start >= self.start && end <= self.end()
    }

    /// Parses `START:SIZE` (command line, configuration, annotations: the
    /// one parser; TypeScript calls it through the binding).
    pub fn parse(s: &str) -> Result<IdRange> {
        let [start, size] = parse_ids(s, "id range", "START:SIZE, e.g. 100000:70000")?;
        Ok(IdRange { start, size })
    }
}

impl IdMapping {
    /// Parses `CONTAINER:HOST:SIZE` (command line, annotations: the one
    /// parser; TypeScript calls it through the binding).
    pub fn parse(s: &str) -> Result<IdMapping> {
        let [container_id, host_id, size] = parse_ids(s, "id mapping", "CONTAINER:HOST:SIZE, e.g. 0:33333:1")?;
        Ok(IdMapping { container_id, host_id, size })
    }
}

/// `s` as `N` colon-separated decimal u32s (the form `form` names): no
/// sign, no spaces, no empty part.
fn parse_ids<const N: usize>(s: &str, what: &str, form: &str) -> Result<[u32; N]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != N || !parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(Error::invalid(format!("{what} {s:?} must be {form}")));
    }
    let mut out = [0u32; N];
    for (o, p) in out.iter_mut().zip(parts) {
        *o = p.parse().map_err(|_| {
            Error::invalid(format!("{what} {s:?}: every number must fit in 32 bits (at most 4294967295)"))
        })?;
    }
    Ok(out)
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.start, self.size)
    }
}

/// Which host ids a workspace may map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPolicy {
    /// Where container id 0 (the ring's root) may map to.
    pub root_range: IdRange,
    /// Where every other container id may map to.
    pub user_ranges: Vec<IdRange>,
    /// Whether host id 0 may appear in a map at all. Off by default.
    pub allow_host_root: bool,
    /// Whether a ring may keep `setgroups(2)`: when false (the default),
    /// `deny` is written to its `setgroups` before its gid map, so ring root
    /// cannot drop a supplementary group that denies it access.
    pub allow_setgroups: bool,
}

impl Default for IdPolicy {
    fn default() -> Self {
        IdPolicy {
            root_range: IdRange::new(33333, 1),
            user_ranges: vec![IdRange::new(100000, 70000)],
            allow_host_root: false,
            allow_setgroups: false,
        }
    }
}

impl IdPolicy {
    /// Checks that the policy itself is sound: non-empty ranges that do not
    /// wrap, and no range covering host id 0 unless `allow_host_root`.
    pub fn validate(&self) -> Result<()> {
        let check = |what: &str, r: IdRange| -> Result<()> {
            if r.size == 0 {
                return Err(Error::invalid(format!("{what} {r} is empty; give a size of at least 1")));
            }
            if r.end() > u32::MAX as u64 {
                return Err(Error::invalid(format!(
                    "{what} {r} runs past the largest id 4294967294; lower its start or size"
                )));
            }
            if r.start == 0 && !self.allow_host_root {
                return Err(Error::invalid(format!(
                    "{what} {r} includes host id 0 (host root), which the policy does not allow"
                )));
            }
            Ok(())
        };
        check("root range", self.root_range)?;
        if self.user_ranges.len() > MAX_USER_RANGES {
            return Err(Error::invalid(format!(
                "{} user ranges given; at most {MAX_USER_RANGES} are allowed",
                self.user_ranges.len()
            )));
        }
        for r in &self.user_ranges {
            check("user range", *r)?;
        }
        Ok(())
    }
}

/// The rule a map broke. Every rejected map names one rule and the line(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdMapRule {
    Empty,
    TooManyLines,
    ZeroSize,
    ContainerOverflow,
    HostOverflow,
    HostRoot,
    RootNotAlone,
    OutsideRootRange,
    OutsideUserRanges,
    ContainerOverlap,
    HostOverlap,
    TooLong,
}

impl IdMapRule {
    pub fn name(self) -> &'static str {
        match self {
            IdMapRule::Empty => "empty-map",
            IdMapRule::TooManyLines => "too-many-lines",
            IdMapRule::ZeroSize => "zero-size",
            IdMapRule::ContainerOverflow => "container-id-overflow",
            IdMapRule::HostOverflow => "host-id-overflow",
            IdMapRule::HostRoot => "host-root",
            IdMapRule::RootNotAlone => "root-not-alone",
            IdMapRule::OutsideRootRange => "outside-root-range",
            IdMapRule::OutsideUserRanges => "outside-user-ranges",
            IdMapRule::ContainerOverlap => "container-overlap",
            IdMapRule::HostOverlap => "host-overlap",
            IdMapRule::TooLong => "map-too-long",
        }
    }
}

/// A map that passed [`validate`]. Only the validator constructs one, so
/// holding a `ValidatedIdMap` proves every rule was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedIdMap {
    lines: Vec<IdMapping>,
    text: String,
}

impl ValidatedIdMap {
    pub fn lines(&self) -> &[IdMapping] {
        &self.lines
    }

    /// The exact bytes written to `/proc/<pid>/uid_map` in one `write(2)`.
    pub fn as_proc_text(&self) -> &str {
        &self.text
    }
}

fn rule_error(rule: IdMapRule, msg: String) -> Error {
    Error::invalid(format!("id map rejected ({}): {msg}", rule.name())).with_reason(crate::error::Reason::MapRule(rule))
}

fn line_desc(i: usize, m: &IdMapping) -> String {
    format!("line {} ({} {} {})", i + 1, m.container_id, m.host_id, m.size)
}

/// Serialises lines in the kernel's `uid_map` format.
pub fn format_map(lines: &[IdMapping]) -> String {
    let mut s = String::with_capacity(lines.len() * 24);
    for m in lines {
        s.push_str(&format!("{} {} {}\n", m.container_id, m.host_id, m.size));
    }
    s
}

/// Checks `lines` against `policy` and every rule in DESIGN.md. Pure: no side
/// effects, so a refused map can never be partly written.
pub fn validate(lines: &[IdMapping], policy: &IdPolicy) -> Result<ValidatedIdMap> {
    policy.validate()?;
    if lines.is_empty() {
        return Err(rule_error(IdMapRule::Empty, "the map has no lines; send at least one mapping".into()));
    }
    if lines.len() > MAX_LINES {
        return Err(rule_error(
            IdMapRule::TooManyLines,
            format!("the map has {} lines; the kernel takes at most {MAX_LINES}", lines.len()),
        ));
    }
    for (i, m) in lines.iter().enumerate() {
        let at = line_desc(i, m);
        if m.size == 0 {
            return Err(rule_error(IdMapRule::ZeroSize, format!("{at}: size must be at least 1")));
        }
        // The kernel treats (u32)-1 as invalid, so the last mapped id must be
        // at most u32::MAX - 1, i.e. first + size <= u32::MAX.
        if m.container_id as u64 + m.size as u64 > u32::MAX as u64 {
            return Err(rule_error(
                IdMapRule::ContainerOverflow,
                format!("{at}: container_id + size runs past the largest id 4294967294"),
            ));
        }
        if m.host_id as u64 + m.size as u64 > u32::MAX as u64 {
            return Err(rule_error(
                IdMapRule::HostOverflow,
                format!("{at}: host_id + size runs past the largest id 4294967294"),
            ));
        }
        if m.host_id == 0 && !policy.allow_host_root {
            return Err(rule_error(
                IdMapRule::HostRoot,
                format!("{at}: maps host id 0 (host root), which is never allowed"),
            ));
        }
        if m.container_id == 0 {
            if !policy.root_range.contains_range(m.host_id, m.size) {
                if m.size > 1 && policy.root_range.contains_range(m.host_id, 1) {
                    return Err(rule_error(
                        IdMapRule::RootNotAlone,
                        format!(
                            "{at}: covers container id 0 and {} more ids; map container id 0 on a line of its own (into root range {}) and the rest into a user range",
                            m.size - 1,
                            policy.root_range
                        ),
                    ));
                }
                return Err(rule_error(
                    IdMapRule::OutsideRootRange,
                    format!("{at}: container id 0 must map inside the workspace's root range {}", policy.root_range),
                ));
            }
        } else if !policy.user_ranges.iter().any(|r| r.contains_range(m.host_id, m.size)) {
            let allowed: Vec<String> = policy.user_ranges.iter().map(|r| r.to_string()).collect();
            return Err(rule_error(
                IdMapRule::OutsideUserRanges,
                format!(
                    "{at}: host ids {}..{} do not lie wholly inside one user range ({})",
                    m.host_id,
                    m.host_id as u64 + m.size as u64 - 1,
                    if allowed.is_empty() { "none configured".to_string() } else { allowed.join(", ") }
                ),
            ));
        }
    }
    check_overlap(lines, |m| m.container_id, IdMapRule::ContainerOverlap, "container")?;
    check_overlap(lines, |m| m.host_id, IdMapRule::HostOverlap, "host")?;
    let text = format_map(lines);
    if text.len() >= MAX_MAP_BYTES {
        return Err(rule_error(
            IdMapRule::TooLong,
            format!("the map is {} bytes; the kernel takes less than {MAX_MAP_BYTES} in one write", text.len()),
        ));
    }
    Ok(ValidatedIdMap { lines: lines.to_vec(), text })
}

fn check_overlap(lines: &[IdMapping], start: impl Fn(&IdMapping) -> u32, rule: IdMapRule, side: &str) -> Result<()> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by_key(|&i| (start(&lines[i]), i));
    // After sorting by start, ranges overlap iff some range starts before the
    // furthest end seen so far.
    let mut furthest: Option<(u64, usize)> = None;
    for &i in &order {
        let s = start(&lines[i]) as u64;
        if let Some((end, j)) = furthest {
            if s < end {
                let (a, b) = if i < j { (i, j) } else { (j, i) };
                return Err(rule_error(
                    rule,
                    format!("{} and {} overlap in their {side} ids", line_desc(a, &lines[a]), line_desc(b, &lines[b])),
                ));
            }
        }
        let e = s + lines[i].size as u64;
        if furthest.is_none_or(|(end, _)| e > end) {
            furthest = Some((e, i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use proptest::prelude::*;

    fn m(c: u32, h: u32, s: u32) -> IdMapping {
        IdMapping { container_id: c, host_id: h, size: s }
    }

    fn rule_of(r: Result<ValidatedIdMap>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        e.message().to_string()
    }

    #[test]
    fn accepts_the_standard_ring_map() {
        let p = IdPolicy::default();
        let v = validate(&[m(0, 33333, 1), m(1, 100000, 65534)], &p).unwrap();
        assert_eq!(v.as_proc_text(), "0 33333 1\n1 100000 65534\n");
    }

    #[test]
    fn each_rule_is_named() {
        let p = IdPolicy::default();
        let cases: Vec<(Vec<IdMapping>, &str)> = vec![
            (vec![], "empty-map"),
            (vec![m(0, 33333, 0)], "zero-size"),
            (vec![m(u32::MAX - 1, 100000, 2)], "container-id-overflow"),
            (vec![m(5, u32::MAX, 1)], "host-id-overflow"),
            (vec![m(1, 0, 1)], "host-root"),
            (vec![m(0, 33333, 2)], "root-not-alone"),
            (vec![m(0, 33334, 1)], "outside-root-range"),
            (vec![m(1, 99999, 1)], "outside-user-ranges"),
            // starts inside, ends outside: the check the old system missed
            (vec![m(1, 169999, 2)], "outside-user-ranges"),
            (vec![m(1, 100000, 10), m(5, 100100, 1)], "container-overlap"),
            (vec![m(1, 100000, 10), m(20, 100009, 1)], "host-overlap"),
            ((0..341).map(|i| m(i + 1, 100000 + i, 1)).collect(), "too-many-lines"),
        ];
        for (lines, rule) in cases {
            let msg = rule_of(validate(&lines, &p));
            assert!(msg.contains(rule), "expected {rule}, got {msg}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        let p = IdPolicy::default();
        let msg = rule_of(validate(&[m(0, 33333, 1), m(1, 100000, 5), m(9, 5, 1)], &p));
        assert!(msg.contains("line 3 (9 5 1)"), "{msg}");
    }

    #[test]
    fn host_root_needs_policy_permission() {
        let mut p = IdPolicy { root_range: IdRange::new(0, 1), ..IdPolicy::default() };
        assert!(p.validate().is_err());
        p.allow_host_root = true;
        validate(&[m(0, 0, 1)], &p).unwrap();
    }

    #[test]
    fn max_lines_accepted_and_too_long_refused() {
        // Short numbers, so 340 lines fit in the kernel's one-page write.
        let p = IdPolicy { user_ranges: vec![IdRange::new(1000, 2000)], ..IdPolicy::default() };
        let ok: Vec<_> = (0..340).map(|i| m(i + 1, 1000 + i, 1)).collect();
        validate(&ok, &p).unwrap();
        // 340 lines of long numbers do not fit in one page.
        let p2 = IdPolicy { user_ranges: vec![IdRange::new(1_000_000_000, 1_000_000)], ..IdPolicy::default() };
        let long: Vec<_> = (0..340).map(|i| m(1_000_000_000 + i, 1_000_000_000 + i, 1)).collect();
        assert!(rule_of(validate(&long, &p2)).contains("map-too-long"));
    }

    #[test]
    fn policy_ranges_are_checked() {
        assert!(IdPolicy { root_range: IdRange::new(5, 0), ..IdPolicy::default() }.validate().is_err());
        assert!(IdPolicy { user_ranges: vec![IdRange::new(u32::MAX - 1, 2)], ..IdPolicy::default() }
            .validate()
            .is_err());
        assert_eq!(IdRange::parse("100000:70000").unwrap(), IdRange::new(100000, 70000));
        assert_eq!(IdRange::parse("0:4294967295").unwrap(), IdRange::new(0, u32::MAX));
        for bad in ["100000", "-1:5", "+1:5", " 1:5", "1:5 ", "1:", ":5", "1:2:3", "a:b", ""] {
            let e = IdRange::parse(bad).unwrap_err();
            assert_eq!(e.code(), "INVALID_ARGUMENT");
            assert!(e.message().contains("must be START:SIZE"), "{bad:?}: {}", e.message());
        }
        let e = IdRange::parse("4294967296:1").unwrap_err();
        assert!(e.message().contains("fit in 32 bits"), "{}", e.message());
        assert_eq!(IdMapping::parse("0:33333:1").unwrap(), IdMapping { container_id: 0, host_id: 33333, size: 1 });
        for bad in ["0:33333", "0:33333:1:1", "0:-1:1", "0::1", "x:1:1"] {
            let e = IdMapping::parse(bad).unwrap_err();
            assert!(e.message().contains("must be CONTAINER:HOST:SIZE"), "{bad:?}: {}", e.message());
        }
        assert!(IdMapping::parse("0:1:99999999999").unwrap_err().message().contains("fit in 32 bits"));
    }

    // ---- property test against a brute-force model ----------------------
    //
    // The model enumerates every id of every line (ids are kept small or near
    // the top of the u32 space so this is cheap) and checks each rule by
    // definition, independently of the validator's interval arithmetic.

    fn model_ok(lines: &[IdMapping], p: &IdPolicy) -> bool {
        if lines.is_empty() || lines.len() > MAX_LINES {
            return false;
        }
        let in_range = |r: &IdRange, id: u64| id >= r.start as u64 && id < r.start as u64 + r.size as u64;
        let mut cont = std::collections::HashSet::new();
        let mut host = std::collections::HashSet::new();
        for l in lines {
            if l.size == 0 {
                return false;
            }
            for k in 0..l.size as u64 {
                let (c, h) = (l.container_id as u64 + k, l.host_id as u64 + k);
                if c >= u32::MAX as u64 || h >= u32::MAX as u64 {
                    return false;
                }
                if h == 0 && !p.allow_host_root {
                    return false;
                }
                if !cont.insert(c) || !host.insert(h) {
                    return false;
                }
                let ok = if l.container_id == 0 {
                    in_range(&p.root_range, h)
                } else {
                    // whole line inside one user range
                    p.user_ranges
                        .iter()
                        .any(|r| in_range(r, l.host_id as u64) && in_range(r, l.host_id as u64 + l.size as u64 - 1))
                };
                if !ok {
                    return false;
                }
            }
        }
        format_map(lines).len() < MAX_MAP_BYTES
    }

    fn small_id() -> impl Strategy<Value = u32> {
        prop_oneof![0u32..48, (u32::MAX - 12)..=u32::MAX]
    }

    fn mapping() -> impl Strategy<Value = IdMapping> {
        (small_id(), small_id(), 0u32..8).prop_map(|(c, h, s)| m(c, h, s))
    }

    fn policy() -> impl Strategy<Value = IdPolicy> {
        (0u32..8, 1u32..3, proptest::collection::vec((1u32..40, 1u32..16), 0..3), any::<bool>()).prop_map(
            |(rs, rz, users, root)| IdPolicy {
                root_range: IdRange::new(rs, rz),
                user_ranges: users.into_iter().map(|(s, z)| IdRange::new(s, z)).collect(),
                allow_host_root: root,
                allow_setgroups: false,
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn validator_matches_model(lines in proptest::collection::vec(mapping(), 0..5), p in policy()) {
            prop_assume!(p.validate().is_ok());
            let got = validate(&lines, &p);
            prop_assert_eq!(got.is_ok(), model_ok(&lines, &p), "lines={:?} policy={:?} got={:?}", lines, p, got);
        }

        #[test]
        fn accepted_maps_serialise_exactly(lines in proptest::collection::vec(mapping(), 1..4), p in policy()) {
            prop_assume!(p.validate().is_ok());
            if let Ok(v) = validate(&lines, &p) {
                prop_assert_eq!(v.as_proc_text().lines().count(), lines.len());
            }
        }
    }
}
