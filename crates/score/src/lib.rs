//! stepwise-score (work in progress).
