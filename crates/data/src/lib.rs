//! stepwise-data (work in progress).
