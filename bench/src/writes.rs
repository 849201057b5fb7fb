//! Rows written per refresh, from PostgreSQL's own counters: `pg_stat_user_tables`
//! (rows inserted, updated, of those HOT, and deleted, per table) read before and after
//! a scenario, divided by the refreshes the database committed meanwhile (the growth of
//! the sessions' generations, warm-up and cut-off requests included, as the counters
//! are).
//!
//! A backend reports its counters when it goes idle, but at most once a second: one
//! that reported less than a second before going idle reports again only when its
//! idle timer fires, ten seconds later (PostgreSQL 15's PGSTAT_IDLE_INTERVAL). So
//! every reading waits eleven seconds after the load and then polls until two readings
//! agree.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use tokio::time::sleep;

use crate::postgres::Postgres;

/// Longer than an idle backend may hold back its counters.
const SETTLE_FIRST: Duration = Duration::from_secs(11);
/// How long the counters may take to settle before the reading gives up waiting.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del of one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounts {
    pub inserted: u64,
    pub updated: u64,
    pub hot_updated: u64,
    pub deleted: u64,
}

impl TableCounts {
    fn minus(&self, before: &Self) -> Self {
        Self {
            inserted: self.inserted.saturating_sub(before.inserted),
            updated: self.updated.saturating_sub(before.updated),
            hot_updated: self.hot_updated.saturating_sub(before.hot_updated),
            deleted: self.deleted.saturating_sub(before.deleted),
        }
    }

    fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// The counters of every table, and the refreshes committed so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    tables: BTreeMap<String, TableCounts>,
    /// The sum of every session's generation: each committed rotation adds one.
    generations: u64,
    /// Transactions of this database (committed and rolled back): each statement
    /// outside a transaction block is one, so this counts round trips that change or
    /// read anything.
    transactions: u64,
}

impl Counters {
    /// Transactions of the database so far (see the field).
    pub fn transactions(&self) -> u64 {
        self.transactions
    }

    fn read_once(pg: &Postgres) -> anyhow::Result<Self> {
        let out = pg.query(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del \
               FROM pg_stat_user_tables ORDER BY relname",
        )?;
        let tables = parse_tables(&out)?;
        let generations = pg.query_number("SELECT COALESCE(sum(generation), 0) FROM sessions")?;
        let transactions = pg.query_number(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database \
              WHERE datname = current_database()",
        )?;
        Ok(Self {
            tables,
            generations,
            transactions,
        })
    }

    /// The counters once every backend has reported what it did.
    pub async fn read_settled(pg: &Postgres) -> anyhow::Result<Self> {
        sleep(SETTLE_FIRST).await;
        let mut last = Self::read_once(pg)?;
        let mut waited = SETTLE_FIRST;
        loop {
            sleep(Duration::from_secs(1)).await;
            waited += Duration::from_secs(1);
            let now = Self::read_once(pg)?;
            // The readings themselves are transactions (two per reading, from psql).
            let settled = now.tables == last.tables
                && now.generations == last.generations
                && now.transactions <= last.transactions + 4;
            if settled || waited >= SETTLE_LIMIT {
                return Ok(now);
            }
            last = now;
        }
    }

    /// What was written between `before` and `self`.
    pub fn since(&self, before: &Self) -> Writes {
        let tables = self
            .tables
            .iter()
            .map(|(name, counts)| {
                let earlier = before.tables.get(name).copied().unwrap_or_default();
                (name.clone(), counts.minus(&earlier))
            })
            .filter(|(_, delta)| !delta.is_zero())
            .collect();
        Writes {
            tables,
            refreshes: self.generations.saturating_sub(before.generations),
            transactions: self.transactions.saturating_sub(before.transactions),
        }
    }
}

fn parse_tables(out: &str) -> anyhow::Result<BTreeMap<String, TableCounts>> {
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            let number = |i: usize| -> anyhow::Result<u64> {
                fields
                    .get(i)
                    .context("a short line")?
                    .parse()
                    .with_context(|| format!("pg_stat_user_tables line `{line}`"))
            };
            Ok((
                fields[0].to_owned(),
                TableCounts {
                    inserted: number(1)?,
                    updated: number(2)?,
                    hot_updated: number(3)?,
                    deleted: number(4)?,
                },
            ))
        })
        .collect()
}

/// Rows written over a scenario, per table (tables written to only).
#[derive(Clone, Debug)]
pub struct Writes {
    pub tables: Vec<(String, TableCounts)>,
    /// Rotations committed meanwhile.
    pub refreshes: u64,
    /// Transactions of the database meanwhile (the readings' own few included).
    pub transactions: u64,
}

impl Writes {
    fn total(&self) -> TableCounts {
        self.tables
            .iter()
            .fold(TableCounts::default(), |sum, (_, c)| TableCounts {
                inserted: sum.inserted + c.inserted,
                updated: sum.updated + c.updated,
                hot_updated: sum.hot_updated + c.hot_updated,
                deleted: sum.deleted + c.deleted,
            })
    }

    /// The goal: each refresh updated exactly one row, and nothing was inserted or
    /// deleted.
    pub fn one_update_per_refresh(&self) -> bool {
        let total = self.total();
        self.refreshes > 0
            && total.updated == self.refreshes
            && total.inserted == 0
            && total.deleted == 0
    }

    fn per_refresh(&self, counts: &TableCounts) -> String {
        let n = self.refreshes.max(1) as f64;
        format!(
            "{:.3} inserted, {:.3} updated ({:.3} HOT), {:.3} deleted",
            counts.inserted as f64 / n,
            counts.updated as f64 / n,
            counts.hot_updated as f64 / n,
            counts.deleted as f64 / n
        )
    }

    /// One line per table written to, and the total, each per refresh.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "rows written per refresh (pg_stat_user_tables over {} committed refreshes): {} \
             (goal: 1 updated, 0 inserted) {}",
            self.refreshes,
            self.per_refresh(&self.total()),
            if self.one_update_per_refresh() {
                "[met]"
            } else {
                "[MISSED]"
            }
        )];
        lines.push(format!(
            "  transactions (pg_stat_database): {:.3} per refresh ({} in all)",
            self.transactions as f64 / self.refreshes.max(1) as f64,
            self.transactions
        ));
        for (table, counts) in &self.tables {
            lines.push(format!(
                "  {table}: {} (rows: {} ins, {} upd, {} hot, {} del)",
                self.per_refresh(counts),
                counts.inserted,
                counts.updated,
                counts.hot_updated,
                counts.deleted
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_view_and_divides_by_refreshes() {
        let before = Counters {
            tables: parse_tables("sessions|1000|5|5|0\nusers|256|0|0|0\n").unwrap(),
            generations: 5,
            transactions: 10,
        };
        let after = Counters {
            tables: parse_tables("sessions|1000|105|104|0\nusers|256|0|0|0\n").unwrap(),
            generations: 105,
            transactions: 112,
        };
        let writes = after.since(&before);
        assert_eq!(writes.refreshes, 100);
        assert_eq!(writes.tables.len(), 1, "only tables written to");
        assert!(writes.one_update_per_refresh());
        assert!(writes.lines()[0].contains("0.000 inserted, 1.000 updated (0.990 HOT)"));
        assert!(writes.lines()[1].contains("1.020 per refresh (102 in all)"));
    }

    #[test]
    fn an_insert_misses_the_goal() {
        let before = Counters {
            tables: parse_tables("sessions|0|0|0|0").unwrap(),
            generations: 0,
            transactions: 0,
        };
        let after = Counters {
            tables: parse_tables("sessions|0|10|10|0\naudit_log|1|0|0|0").unwrap(),
            generations: 10,
            transactions: 11,
        };
        assert!(!after.since(&before).one_update_per_refresh());
    }
}
