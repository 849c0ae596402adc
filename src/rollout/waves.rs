//! Splitting a plan's changes into waves.
//!
//! **Groups** are instances that likely run the same software: the same
//! AMI, the same IAM role, and the same Auto Scaling group (when the
//! instance is in one) or else the same owner tag (when it has one). An
//! instance the scan knows nothing about is a group of its own.
//!
//! **Wave 1 is the canaries**: the first `N` instances of every group
//! (`N` is the first entry of `--waves`, usually 1), so every kind of
//! workload is tried once before any group is changed at scale.
//!
//! **Later waves** are cumulative shares of the remaining changes: `P%`
//! means "until P % of the rest is changed" (rounded up, so a small fleet
//! still moves), `N` means "until N of the rest are changed"; the last entry
//! must be `100%`. The rest is taken round-robin across groups (each
//! group's second instance, then each group's third, ...) so a 10 % wave
//! touches many groups a little rather than one group entirely. Waves that
//! would add nothing are dropped.

use std::collections::BTreeMap;
use std::fmt;

/// What makes two instances "likely the same software".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub image_id: Option<String>,
    pub role: Option<String>,
    /// `asg:NAME`, `owner:VALUE`, or `instance:ID` for an instance the
    /// scan did not see (it is then a group of its own).
    pub unit: String,
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ami={} role={} {}",
            self.image_id.as_deref().unwrap_or("-"),
            self.role.as_deref().unwrap_or("-"),
            self.unit
        )
    }
}

/// What the scan knew about an instance, for grouping.
#[derive(Debug, Clone, Default)]
pub struct Traits {
    pub image_id: Option<String>,
    pub role: Option<String>,
    pub asg: Option<String>,
    pub owner: Option<String>,
}

impl GroupKey {
    pub fn of(instance_id: &str, traits: Option<&Traits>) -> GroupKey {
        match traits {
            None => GroupKey {
                image_id: None,
                role: None,
                unit: format!("instance:{instance_id}"),
            },
            Some(t) => GroupKey {
                image_id: t.image_id.clone(),
                role: t.role.clone(),
                unit: match (&t.asg, &t.owner) {
                    (Some(asg), _) => format!("asg:{asg}"),
                    (None, Some(owner)) => format!("owner:{owner}"),
                    (None, None) => "-".into(),
                },
            },
        }
    }
}

/// One entry of `--waves` after the first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Until this many of the remaining changes are changed.
    Count(usize),
    /// Until this share (0 < p ≤ 100) of the remaining changes is changed.
    Percent(f64),
}

/// `--waves`: canaries per group, then the cumulative steps.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveSpec {
    pub canaries_per_group: usize,
    pub steps: Vec<Step>,
}

impl WaveSpec {
    /// `1,10%,50%,100%`, or why not.
    pub fn parse(text: &str) -> Result<WaveSpec, String> {
        let entries: Vec<&str> = text.split(',').map(str::trim).collect();
        let canaries = entries[0]
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                format!(
                    "the first wave `{}` must be how many canaries per group (a count of at least 1)",
                    entries[0]
                )
            })?;
        let mut steps = Vec::new();
        for e in &entries[1..] {
            let step = match e.strip_suffix('%') {
                Some(p) => match p.parse::<f64>() {
                    Ok(p) if p > 0.0 && p <= 100.0 => Step::Percent(p),
                    _ => return Err(format!("`{e}` is not a share between 0% and 100%")),
                },
                None => match e.parse::<usize>() {
                    Ok(n) if n >= 1 => Step::Count(n),
                    _ => return Err(format!("`{e}` is neither a count (10) nor a share (10%)")),
                },
            };
            steps.push(step);
        }
        let (mut count, mut share) = (0, 0.0);
        for step in &steps {
            let grows = match *step {
                Step::Count(n) => std::mem::replace(&mut count, n) <= n,
                Step::Percent(p) => std::mem::replace(&mut share, p) <= p,
            };
            if !grows {
                return Err(format!(
                    "`{text}`: waves are cumulative, so they cannot shrink"
                ));
            }
        }
        if steps.last() != Some(&Step::Percent(100.0)) {
            return Err("the last wave must be 100% (every change is made in the end)".into());
        }
        Ok(WaveSpec {
            canaries_per_group: canaries,
            steps,
        })
    }
}

/// A change to place in a wave: its index in the plan and its group.
#[derive(Debug, Clone)]
pub struct Member {
    pub index: usize,
    pub group: GroupKey,
}

/// The waves, each a list of plan indexes (in plan order within a wave).
/// `members` must be in plan order.
pub fn split(spec: &WaveSpec, members: &[Member]) -> Vec<Vec<usize>> {
    let mut groups: BTreeMap<&GroupKey, Vec<usize>> = BTreeMap::new();
    for m in members {
        groups.entry(&m.group).or_default().push(m.index);
    }
    // Canaries: the first N of each group, in plan order.
    let mut canaries: Vec<usize> = groups
        .values()
        .flat_map(|g| g.iter().take(spec.canaries_per_group).copied())
        .collect();
    canaries.sort_unstable();
    // The rest, round-robin across groups.
    let mut rest = Vec::new();
    let mut rank = spec.canaries_per_group;
    loop {
        let before = rest.len();
        rest.extend(groups.values().filter_map(|g| g.get(rank).copied()));
        if rest.len() == before {
            break;
        }
        rank += 1;
    }
    let mut waves = vec![canaries];
    let total = rest.len();
    let mut done = 0;
    for step in &spec.steps {
        let until = match *step {
            Step::Count(n) => n.min(total),
            Step::Percent(p) => ((total as f64 * p / 100.0).ceil() as usize).min(total),
        };
        if until > done {
            let mut wave = rest[done..until].to_vec();
            wave.sort_unstable();
            waves.push(wave);
            done = until;
        }
    }
    waves.retain(|w| !w.is_empty());
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(groups: &[(&str, usize)]) -> Vec<Member> {
        let mut out = Vec::new();
        for (name, n) in groups {
            for _ in 0..*n {
                out.push(Member {
                    index: out.len(),
                    group: GroupKey {
                        image_id: Some(format!("ami-{name}")),
                        role: None,
                        unit: "-".into(),
                    },
                });
            }
        }
        out
    }

    fn sizes(w: &[Vec<usize>]) -> Vec<usize> {
        w.iter().map(Vec::len).collect()
    }

    #[test]
    fn parses_and_refuses() {
        let s = WaveSpec::parse("1,10%,50%,100%").unwrap();
        assert_eq!(s.canaries_per_group, 1);
        assert_eq!(
            s.steps,
            vec![
                Step::Percent(10.0),
                Step::Percent(50.0),
                Step::Percent(100.0)
            ]
        );
        assert_eq!(
            WaveSpec::parse("2, 5, 100%").unwrap().steps,
            vec![Step::Count(5), Step::Percent(100.0)]
        );
        for bad in [
            "",
            "0,100%",
            "10%,100%",
            "1,50%",
            "1,x,100%",
            "1,150%,100%",
            "1,0%,100%",
        ] {
            assert!(WaveSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_canary_per_group_first() {
        let m = members(&[("a", 5), ("b", 1), ("c", 3)]);
        let w = split(&WaveSpec::parse("1,100%").unwrap(), &m);
        assert_eq!(w[0], vec![0, 5, 6], "the first of each group");
        assert_eq!(w[1], vec![1, 2, 3, 4, 7, 8]);
    }

    #[test]
    fn later_waves_are_cumulative_shares_rounded_up() {
        // 3 canaries, 20 remaining: 10% → 2, 50% → 10 (8 more), 100% → 10 more.
        let m = members(&[("a", 10), ("b", 8), ("c", 5)]);
        let w = split(&WaveSpec::parse("1,10%,50%,100%").unwrap(), &m);
        assert_eq!(sizes(&w), vec![3, 2, 8, 10]);
        // Every change exactly once.
        let mut all: Vec<usize> = w.concat();
        all.sort_unstable();
        assert_eq!(all, (0..23).collect::<Vec<_>>());
    }

    #[test]
    fn the_rest_is_spread_across_groups() {
        let m = members(&[("a", 10), ("b", 10)]);
        let w = split(&WaveSpec::parse("1,2,100%").unwrap(), &m);
        // Wave 2 takes the second instance of each group, not two of one.
        assert_eq!(w[1], vec![1, 11]);
    }

    #[test]
    fn counts_and_tiny_fleets() {
        let m = members(&[("a", 1)]);
        assert_eq!(
            sizes(&split(&WaveSpec::parse("1,10%,100%").unwrap(), &m)),
            vec![1]
        );
        let m = members(&[("a", 3)]);
        // 2 remaining: 10% rounds up to 1, then the last 1.
        assert_eq!(
            sizes(&split(&WaveSpec::parse("1,10%,50%,100%").unwrap(), &m)),
            vec![1, 1, 1]
        );
        // A count larger than what is left takes what is left; empty waves vanish.
        assert_eq!(
            sizes(&split(&WaveSpec::parse("1,50,100%").unwrap(), &m)),
            vec![1, 2]
        );
        assert!(split(&WaveSpec::parse("1,100%").unwrap(), &[]).is_empty());
        // Two canaries per group.
        let m = members(&[("a", 4), ("b", 1)]);
        assert_eq!(
            sizes(&split(&WaveSpec::parse("2,100%").unwrap(), &m)),
            vec![3, 2]
        );
    }

    #[test]
    fn groups_follow_ami_role_and_asg_or_owner() {
        let t = |asg: Option<&str>, owner: Option<&str>| Traits {
            image_id: Some("ami-1".into()),
            role: Some("web".into()),
            asg: asg.map(Into::into),
            owner: owner.map(Into::into),
        };
        let a = GroupKey::of("i-1", Some(&t(Some("g1"), Some("team-a"))));
        let b = GroupKey::of("i-2", Some(&t(Some("g1"), Some("team-b"))));
        assert_eq!(a, b, "the Auto Scaling group decides over the owner");
        let c = GroupKey::of("i-3", Some(&t(None, Some("team-a"))));
        let d = GroupKey::of("i-4", Some(&t(None, Some("team-b"))));
        assert_ne!(c, d);
        assert_ne!(GroupKey::of("i-5", None), GroupKey::of("i-6", None));
        let mut other_role = t(None, Some("team-a"));
        other_role.role = Some("batch".into());
        assert_ne!(c, GroupKey::of("i-7", Some(&other_role)));
    }
}
