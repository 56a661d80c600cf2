-- Generated from tollhouse.db.tables by `python -m tollhouse.db.sqlite_schema --write`.
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));

INSERT INTO alembic_version (version_num) VALUES ('0005');

CREATE TABLE api_keys (
	id VARCHAR(40) NOT NULL,
	project_id VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	kind VARCHAR(8) NOT NULL,
	key_hash VARCHAR(64) NOT NULL,
	hint VARCHAR(32) NOT NULL,
	created_at DATETIME NOT NULL,
	last_used_at DATETIME,
	revoked_at DATETIME,
	CONSTRAINT pk_api_keys PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_api_keys_key_hash ON api_keys (key_hash);

CREATE INDEX ix_api_keys_project_id ON api_keys (project_id);

CREATE TABLE budgets (
	project_id VARCHAR(64) NOT NULL,
	key_id VARCHAR(40) NOT NULL,
	period VARCHAR(8) NOT NULL,
	limit_nanos BIGINT,
	limit_tokens BIGINT,
	updated_at DATETIME NOT NULL,
	CONSTRAINT pk_budgets PRIMARY KEY (project_id, key_id)
);

CREATE TABLE claude_agg (
	session_id VARCHAR(128) NOT NULL,
	kind VARCHAR(80) NOT NULL,
	k1 BIGINT NOT NULL,
	k2 INTEGER NOT NULL,
	project_dir VARCHAR(512) NOT NULL,
	cwd VARCHAR(1024) NOT NULL,
	model VARCHAR(200) NOT NULL,
	fast INTEGER NOT NULL,
	n BIGINT NOT NULL,
	input_tokens BIGINT NOT NULL,
	output_tokens BIGINT NOT NULL,
	cache_creation_tokens BIGINT NOT NULL,
	cache_read_tokens BIGINT NOT NULL,
	c_calc BIGINT NOT NULL,
	c_ccusage BIGINT NOT NULL,
	c_display BIGINT NOT NULL,
	c_auto BIGINT NOT NULL,
	c_auto_ccusage BIGINT NOT NULL,
	m_calc BIGINT NOT NULL,
	m_calc_ccusage BIGINT NOT NULL,
	m_auto BIGINT NOT NULL,
	m_auto_ccusage BIGINT NOT NULL,
	min_seq BIGINT NOT NULL,
	min_ts BIGINT NOT NULL,
	max_ts BIGINT NOT NULL,
	CONSTRAINT pk_claude_agg PRIMARY KEY (session_id, kind, k1, k2, project_dir, cwd, model, fast)
);

CREATE INDEX ix_claude_agg_report ON claude_agg (kind, k1, model, fast, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, c_calc, c_ccusage, c_display, c_auto, c_auto_ccusage, m_calc, m_calc_ccusage, m_auto, m_auto_ccusage, min_seq);

CREATE TABLE claude_agg_state (
	kind VARCHAR(80) NOT NULL,
	dirty_id BIGINT NOT NULL,
	CONSTRAINT pk_claude_agg_state PRIMARY KEY (kind)
);

CREATE TABLE claude_dirty (
	id INTEGER NOT NULL,
	session_id VARCHAR(128) NOT NULL,
	CONSTRAINT pk_claude_dirty PRIMARY KEY (id)
);

CREATE TABLE claude_files (
	path VARCHAR(1024) NOT NULL,
	project_dir VARCHAR(512) NOT NULL,
	session_id VARCHAR(128) NOT NULL,
	is_subagent BOOLEAN NOT NULL,
	size BIGINT NOT NULL,
	mtime_ns BIGINT NOT NULL,
	inode BIGINT NOT NULL,
	read_offset BIGINT NOT NULL,
	head_hash VARCHAR(64) NOT NULL,
	head_len INTEGER NOT NULL,
	lines BIGINT NOT NULL,
	malformed_lines BIGINT NOT NULL,
	updated_at DATETIME NOT NULL,
	CONSTRAINT pk_claude_files PRIMARY KEY (path)
);

CREATE TABLE claude_price_cache (
	source TEXT NOT NULL,
	version VARCHAR(80) NOT NULL,
	rates TEXT NOT NULL,
	CONSTRAINT pk_claude_price_cache PRIMARY KEY (source)
);

CREATE TABLE ledger (
	id VARCHAR(40) NOT NULL,
	request_id VARCHAR(40),
	created_at DATETIME NOT NULL,
	project_id VARCHAR(1024) NOT NULL,
	api_key_id VARCHAR(40),
	source VARCHAR(16) NOT NULL,
	route VARCHAR(64) NOT NULL,
	provider VARCHAR(64),
	model_requested VARCHAR(200),
	model_served VARCHAR(200),
	stream BOOLEAN NOT NULL,
	status_code INTEGER NOT NULL,
	outcome VARCHAR(24) NOT NULL,
	input_tokens BIGINT NOT NULL,
	cache_read_tokens BIGINT NOT NULL,
	cache_write_5m_tokens BIGINT NOT NULL,
	cache_write_1h_tokens BIGINT NOT NULL,
	output_tokens BIGINT NOT NULL,
	reasoning_tokens BIGINT NOT NULL,
	cost_nanos BIGINT NOT NULL,
	saved_cost_nanos BIGINT NOT NULL,
	tokens_saved BIGINT NOT NULL,
	cached BOOLEAN NOT NULL,
	unpriced BOOLEAN NOT NULL,
	price_version VARCHAR(64) NOT NULL,
	service_tier VARCHAR(16),
	latency_ms INTEGER,
	ttft_ms INTEGER,
	upstream_request_id VARCHAR(200),
	error_code VARCHAR(64),
	error_message TEXT,
	session_id VARCHAR(128),
	is_subagent BOOLEAN NOT NULL,
	external_id VARCHAR(200),
	claude_seq BIGINT,
	claude_ts_ms BIGINT,
	claude_project_dir VARCHAR(512),
	claude_cwd VARCHAR(1024),
	claude_fast BOOLEAN,
	claude_reported_nanos BIGINT,
	claude_calc_nanos BIGINT,
	claude_ccusage_nanos BIGINT,
	claude_unpriced BOOLEAN,
	claude_ccusage_unpriced BOOLEAN,
	CONSTRAINT pk_ledger PRIMARY KEY (id)
);

CREATE INDEX ix_ledger_created_at ON ledger (created_at);

CREATE INDEX ix_ledger_project_id_created_at ON ledger (project_id, created_at);

CREATE INDEX ix_ledger_session_id ON ledger (session_id);

CREATE UNIQUE INDEX ix_ledger_source_external_id ON ledger (source, external_id);

CREATE TABLE organizations (
	id VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	created_at DATETIME NOT NULL,
	CONSTRAINT pk_organizations PRIMARY KEY (id)
);

CREATE TABLE projects (
	id VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	created_at DATETIME NOT NULL,
	org_id VARCHAR(64),
	"plan" VARCHAR(64),
	provider VARCHAR(64),
	CONSTRAINT pk_projects PRIMARY KEY (id)
);

CREATE TABLE provider_keys (
	project_id VARCHAR(64) NOT NULL,
	provider VARCHAR(64) NOT NULL,
	ciphertext TEXT NOT NULL,
	updated_at DATETIME NOT NULL,
	CONSTRAINT pk_provider_keys PRIMARY KEY (project_id, provider)
);

