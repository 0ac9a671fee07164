//! stepwise-search (work in progress).
