//! Grouping final answers by mathematical equivalence (not string equality).

use crate::{Options, verify};

/// Answers that `verify` finds equal to the group's first member.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerGroup {
    /// The first answer of the group, as written.
    pub answer: String,
    /// Indices (into the input) of every member, in input order.
    pub members: Vec<usize>,
    /// Sum of the members' weights.
    pub weight: f64,
}

/// Groups answers by equivalence, each weighted (use 1.0 for plain votes).
///
/// An answer joins the first group whose representative it verifies against (in both
/// directions, so `gold`-side normalization asymmetries cannot split or merge groups
/// by order). `None` answers (no answer found) join no group. Groups come back in
/// order of first appearance; [`best_group`] picks the heaviest with a deterministic
/// tie-break.
pub fn group_answers(
    answers: &[Option<String>],
    weights: &[f64],
    opts: &Options,
) -> Vec<AnswerGroup> {
    let mut groups: Vec<AnswerGroup> = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        let Some(a) = a else { continue };
        let w = weights.get(i).copied().unwrap_or(1.0);
        let w = if w.is_finite() { w } else { 0.0 };
        match groups.iter_mut().find(|g| {
            g.answer == *a
                || (verify(&g.answer, a, opts).is_equal() && verify(a, &g.answer, opts).is_equal())
        }) {
            Some(g) => {
                g.members.push(i);
                g.weight += w;
            }
            None => groups.push(AnswerGroup {
                answer: a.clone(),
                members: vec![i],
                weight: w,
            }),
        }
    }
    groups
}

/// The heaviest group; ties go to the larger group, then to the earlier one.
pub fn best_group(groups: &[AnswerGroup]) -> Option<&AnswerGroup> {
    let mut best: Option<&AnswerGroup> = None;
    for g in groups {
        best = match best {
            None => Some(g),
            Some(b) => {
                let better = g.weight > b.weight + 1e-12
                    || ((g.weight - b.weight).abs() <= 1e-12 && g.members.len() > b.members.len());
                Some(if better { g } else { b })
            }
        };
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Option<String> {
        Some(x.to_string())
    }

    #[test]
    fn groups_and_ties() {
        let a = [s("7"), None, s("8"), s("7"), s("8")];
        let g = group_answers(&a, &[1.0; 5], &Options::default());
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].members, [0, 3]);
        // tie in weight and size: the earlier group wins
        assert_eq!(best_group(&g).unwrap().answer, "7");
        let g = group_answers(&a, &[0.1, 1.0, 0.9, 0.1, 0.2], &Options::default());
        assert_eq!(best_group(&g).unwrap().answer, "8");
        assert!(best_group(&[]).is_none());
    }
}
