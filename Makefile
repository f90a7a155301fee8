# The two commands: `make run` brings Monetize up, `make test` runs the suite (see README).
.PHONY: run stop test install services migrate lint format bench clean

run:
	@bash scripts/dev.sh run

stop:
	@bash scripts/dev.sh stop

test:
	@bash scripts/dev.sh test $(PYTEST_ARGS)

install:
	@bash scripts/dev.sh install

services:
	@bash scripts/dev.sh services

migrate:
	@bash scripts/dev.sh migrate

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

bench:
	@bash scripts/dev.sh bench $(BENCH)

clean:
	rm -rf .venv .pytest_cache .ruff_cache staticfiles
