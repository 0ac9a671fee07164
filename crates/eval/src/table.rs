//! Tables rendered as Markdown, CSV and HTML.

use serde::{Deserialize, Serialize};

/// A rectangular table of strings with a header row.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(headers: I) -> Self {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are left empty, extra cells are kept.
    pub fn push<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, row: I) {
        self.rows.push(row.into_iter().map(Into::into).collect());
    }

    fn width(&self) -> usize {
        self.rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0)
    }

    fn cell(row: &[String], i: usize) -> &str {
        row.get(i).map_or("", String::as_str)
    }

    /// GitHub-flavoured Markdown (pipes escaped, newlines turned into spaces).
    pub fn to_markdown(&self) -> String {
        let w = self.width();
        let esc = |s: &str| s.replace('|', "\\|").replace(['\n', '\r'], " ");
        let line = |row: &[String]| {
            let cells: Vec<String> = (0..w).map(|i| esc(Self::cell(row, i))).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = line(&self.headers);
        out.push_str(&format!("|{}\n", "---|".repeat(w)));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }

    /// RFC 4180 CSV: cells with commas, quotes or newlines are quoted.
    pub fn to_csv(&self) -> String {
        let w = self.width();
        let esc = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let line = |row: &[String]| {
            let cells: Vec<String> = (0..w).map(|i| esc(Self::cell(row, i))).collect();
            format!("{}\n", cells.join(","))
        };
        let mut out = line(&self.headers);
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }

    /// An HTML `<table>` (cells escaped).
    pub fn to_html(&self) -> String {
        let w = self.width();
        let mut out = String::from("<table>\n<thead><tr>");
        for i in 0..w {
            out.push_str(&format!(
                "<th>{}</th>",
                html_escape(Self::cell(&self.headers, i))
            ));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for r in &self.rows {
            out.push_str("<tr>");
            for i in 0..w {
                out.push_str(&format!("<td>{}</td>", html_escape(Self::cell(r, i))));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }
}

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Table {
        let mut t = Table::new(["a", "b"]);
        t.push(["1", "x|y"]);
        t.push(["2,3", "say \"hi\"\nok"]);
        t.push(["only"]);
        t
    }

    #[test]
    fn markdown() {
        assert_eq!(
            t().to_markdown(),
            "| a | b |\n|---|---|\n| 1 | x\\|y |\n| 2,3 | say \"hi\" ok |\n| only |  |\n"
        );
    }

    #[test]
    fn csv() {
        assert_eq!(
            t().to_csv(),
            "a,b\n1,x|y\n\"2,3\",\"say \"\"hi\"\"\nok\"\nonly,\n"
        );
    }

    #[test]
    fn html_is_escaped() {
        let mut t = Table::new(["<h>"]);
        t.push(["a&b"]);
        let h = t.to_html();
        assert!(h.contains("<th>&lt;h&gt;</th>") && h.contains("<td>a&amp;b</td>"));
    }
}
