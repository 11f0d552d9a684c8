//! Palpal's integration tests live in `tests/it`: one test binary for the workspace, so that
//! linking happens once. This library is empty on purpose.
