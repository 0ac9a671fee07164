//! The benches' output: Markdown tables, and one way to print and write a result section.

use crate::{BenchError, io};
use std::path::Path;

/// How a column is aligned (numbers right, names left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A Markdown table built row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            header: columns.iter().map(|(h, _)| cell(h)).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are left empty, cells beyond the header are dropped.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        let mut r: Vec<String> = cells
            .into_iter()
            .take(self.header.len())
            .map(|c| cell(c.as_ref()))
            .collect();
        r.resize(self.header.len(), String::new());
        self.rows.push(r);
        self
    }

    /// Rows added so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as Markdown, one line per row, ending with a newline.
    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut s = line(&self.header);
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|a| match a {
                Align::Left => "---",
                Align::Right => "---:",
            })
            .collect();
        s.push_str(&format!("|{}|\n", rule.join("|")));
        for r in &self.rows {
            s.push_str(&line(r));
        }
        s
    }
}

/// A cell's text: pipes escaped and line breaks flattened, so the row stays one row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Prints a bench's Markdown section on stdout and, with `out`, writes it to that file.
pub fn publish(markdown: &str, out: Option<&Path>) -> Result<(), BenchError> {
    println!("{markdown}");
    if let Some(path) = out {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        }
        std::fs::write(path, markdown).map_err(io(format!("writing {}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_has_its_alignment_rule_and_rows() {
        let mut t = Table::new(&[("engine", Align::Left), ("pairs/s", Align::Right)]);
        assert!(t.is_empty());
        t.row(["stepwise", "151747"]).row(["math-verify", "869"]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.to_markdown(),
            "| engine | pairs/s |\n|---|---:|\n| stepwise | 151747 |\n| math-verify | 869 |\n"
        );
    }

    #[test]
    fn cells_cannot_break_the_table() {
        let mut t = Table::new(&[("a", Align::Left), ("b", Align::Right), ("c", Align::Right)]);
        t.row(["x|y", "two\nlines"]);
        t.row(["1", "2", "3", "dropped"]);
        assert_eq!(
            t.to_markdown(),
            "| a | b | c |\n|---|---:|---:|\n| x\\|y | two lines |  |\n| 1 | 2 | 3 |\n"
        );
    }

    #[test]
    fn publish_writes_the_section_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results").join("bench.md");
        publish("| a |\n|---|\n", Some(&path)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "| a |\n|---|\n");
        // a folder where the file should go is an error naming the path
        let e = publish("x", Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
    }
}
