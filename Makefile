# Palpal: two commands for a newcomer.
#   make demo   build everything and start the terminals on a seeded demo data set
#   make test   the whole suite, as CI runs it
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
XVFB := xvfb-run -a -s "-screen 0 1280x800x24"

.PHONY: demo test deps ui build lint e2e bench api-fuzz replay replay-postgres responsiveness

deps:
	@scripts/install-deps.sh

ui: deps
	cd ui && npm run build

build: ui
	cargo build --workspace --bins

demo: build
	@scripts/demo.sh

lint: ui
	cargo fmt --all --check
	cd ui && npm run lint && npx tsc --noEmit -p .
	cargo clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --quiet

test: lint build
	cd ui && npm test
	PALPAL_E2E=1 $(XVFB) cargo test --workspace
	PALPAL_TEST_DB=postgres cargo test -p palpal-central --test server
	tests/api-fuzz/run.sh 100
	tests/api-fuzz/console.sh 50
	target/debug/palpal-replay --central target/debug/palpal-central --scale 0.01 --compress 120 --check --out target/replay-smoke
	target/debug/palpal-replay --central target/debug/palpal-central --scale 0.01 --compress 120 --check --mode smart --database postgres --nodes 2 --kill node --out target/replay-smoke-postgres
	rm -f .demo/screens/*.png
	PALPAL_DEMO_EXIT=1 scripts/demo.sh
	test -s .demo/screens/kiosk.png && test -s .demo/screens/counter.png && test -s .demo/screens/console.png

bench:
	cargo bench -p points-core
	cargo bench -p redemption-token --bench verify
	cargo bench -p watch-protocol --bench link
	cargo bench -p src-tauri --bench camera
	cargo build --release -p palpal-central
	cargo bench -p palpal --bench drain

# The real app's window while the server hangs or is gone: the longest frame gap, how soon
# another button is handled, and how long each flow takes (e2e_responsive prints them).
responsiveness: build
	PALPAL_E2E=1 $(XVFB) cargo test -p tests --test it e2e_responsive -- --nocapture

# Schemathesis against the real server, every request signed (tests/api-fuzz/run.sh).
api-fuzz: build
	tests/api-fuzz/run.sh 1000
	tests/api-fuzz/console.sh 1000

# Launch day at full scale against a release build of the server; the report lands in docs/replay/.
replay:
	cargo build --release -p replay -p palpal-central
	target/release/palpal-replay --central target/release/palpal-central --out docs/replay

# The same day on PostgreSQL behind two server processes, one of them killed at 10:30; the
# report lands in docs/replay/postgres/.
replay-postgres:
	cargo build --release -p replay -p palpal-central
	target/release/palpal-replay --central target/release/palpal-central --database postgres --nodes 2 --kill node --mode smart --out docs/replay/postgres
