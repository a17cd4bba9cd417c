//! Built-in functions known to have no side effects beyond computing a value.
//! A call to any other function is an opaque `function` action: its body may
//! do anything, so it is never treated as a harmless read.

const SAFE: &[&str] = &[
    // aggregates
    "count", "sum", "avg", "min", "max", "bool_and", "bool_or", "every", "string_agg", "array_agg",
    "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "stddev", "stddev_pop", "stddev_samp",
    "variance", "var_pop", "var_samp", "percentile_cont", "percentile_disc", "mode", "bit_and", "bit_or",
    "corr", "covar_pop", "covar_samp", "regr_slope", "regr_intercept", "any_value",
    // window
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
    // conditional and comparison
    "coalesce", "nullif", "greatest", "least", "num_nonnulls", "num_nulls",
    // math
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "mod", "power", "pow", "sqrt", "cbrt", "exp", "ln",
    "log", "log10", "sign", "div", "pi", "degrees", "radians", "sin", "cos", "tan", "asin", "acos", "atan",
    "atan2", "width_bucket", "gcd", "lcm", "factorial", "scale", "random",
    // strings
    "lower", "upper", "initcap", "length", "char_length", "character_length", "octet_length", "bit_length",
    "substr", "substring", "position", "strpos", "trim", "btrim", "ltrim", "rtrim", "lpad", "rpad", "concat",
    "concat_ws", "replace", "translate", "left", "right", "repeat", "reverse", "split_part", "starts_with",
    "format", "quote_ident", "quote_literal", "quote_nullable", "to_hex", "md5", "sha256", "sha512", "ascii",
    "chr", "regexp_replace", "regexp_match", "regexp_matches", "regexp_split_to_array",
    "regexp_split_to_table", "regexp_like", "regexp_count", "regexp_substr", "string_to_array",
    "array_to_string", "encode", "decode", "convert_from", "convert_to", "unaccent", "overlay",
    // dates and times
    "now", "current_timestamp", "current_date", "current_time", "localtimestamp", "localtime",
    "clock_timestamp", "statement_timestamp", "transaction_timestamp", "date_trunc", "date_part", "extract",
    "age", "make_date", "make_time", "make_timestamp", "make_timestamptz", "make_interval", "to_char",
    "to_date", "to_timestamp", "to_number", "date_bin", "justify_days", "justify_hours", "justify_interval",
    "isfinite", "timezone",
    // json
    "to_json", "to_jsonb", "json_build_object", "jsonb_build_object", "json_build_array", "jsonb_build_array",
    "json_object", "jsonb_object", "json_array_length", "jsonb_array_length", "json_each", "jsonb_each",
    "json_each_text", "jsonb_each_text", "json_extract_path", "jsonb_extract_path", "json_extract_path_text",
    "jsonb_extract_path_text", "json_object_keys", "jsonb_object_keys", "json_array_elements",
    "jsonb_array_elements", "json_array_elements_text", "jsonb_array_elements_text", "json_typeof",
    "jsonb_typeof", "jsonb_set", "jsonb_insert", "jsonb_strip_nulls", "json_strip_nulls", "jsonb_pretty",
    "jsonb_path_query", "jsonb_path_exists", "jsonb_path_match", "row_to_json", "array_to_json",
    "json_populate_record", "jsonb_populate_record", "json_to_record", "jsonb_to_record",
    "json_to_recordset", "jsonb_to_recordset",
    // arrays and sets
    "array_length", "array_upper", "array_lower", "array_position", "array_positions", "array_append",
    "array_prepend", "array_cat", "array_remove", "array_replace", "array_dims", "array_ndims",
    "cardinality", "unnest", "generate_series", "generate_subscripts",
    // types and misc pure functions
    "cast", "format_type", "pg_typeof", "gen_random_uuid", "uuid_generate_v4", "version",
    "current_database", "current_schema", "current_schemas", "current_user", "session_user", "user",
    "inet_client_addr", "inet_server_addr", "pg_backend_pid", "txid_current", "pg_current_xact_id",
    "has_table_privilege", "has_schema_privilege", "has_database_privilege", "has_column_privilege",
    "pg_table_is_visible", "pg_get_constraintdef", "pg_get_indexdef", "pg_get_viewdef",
    "pg_get_expr", "pg_relation_size", "pg_total_relation_size", "pg_size_pretty", "pg_database_size",
    "obj_description", "col_description", "pg_get_userbyid", "pg_encoding_to_char", "pg_is_in_recovery",
    "pg_postmaster_start_time", "pg_get_keywords", "to_regclass", "to_regtype", "array_fill",
    "host", "masklen", "network", "family", "bool", "int4", "int8", "text", "numeric", "float8",
];

/// Whether `name` (lower case, optionally `pg_catalog.`-qualified) is a
/// known side-effect-free built-in.
pub fn is_safe(name: &str) -> bool {
    let bare = name.strip_prefix("pg_catalog.").unwrap_or(name);
    !bare.contains('.') && SAFE.contains(&bare)
}
