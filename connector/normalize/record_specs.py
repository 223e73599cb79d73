"""The field layout of every family, in Avro field order.

The .avsc files in avro/ are the published contract; a unit test checks that
these layouts produce exactly their fields. Required fields are the ones a
record means nothing without (identity, the measured value, the event time);
the rest are optional so that a sparse vendor payload is still delivered.
"""

from __future__ import annotations

from connector.normalize.layout import FieldSpec, Kind, RecordSpec, opt, req
from connector.protocol.families import Family

S, ID, L, D = Kind.STRING, Kind.ID, Kind.LONG, Kind.DOUBLE
F9, F8, TS = Kind.FIXED_1E9, Kind.FIXED_1E8, Kind.TIMESTAMP_NS


def _spec(*fields: FieldSpec) -> RecordSpec:
    return RecordSpec(fields)


# Per-side NBBO fields are optional: a one-sided market (common on prediction
# venues) is a real state, not a bad record.
PRICE = _spec(
    req("symbol", S),
    opt("instrument_type", S),
    opt("best_bid_px_1e9", F9),
    opt("best_bid_sz_1e8", F8),
    opt("best_bid_venue", S),
    opt("best_ask_px_1e9", F9),
    opt("best_ask_sz_1e8", F8),
    opt("best_ask_venue", S),
    opt("spread_bps", D),
    req("ts_ns", TS),
)

BOOK_UPDATE = _spec(
    req("symbol", S),
    req("venue", S),
    opt("instrument_type", S),
    req("bids", Kind.LEVELS),
    req("asks", Kind.LEVELS),
    req("ts_ns", TS),
    req("is_snapshot", Kind.BOOL),
    opt("checksum", L),
)

ORDER = _spec(
    req("node_order_id", ID),
    opt("client_id", S),
    opt("client_order_id", S),
    req("symbol", S),
    req("side", S),
    req("qty_1e8", F8),
    opt("filled_qty_1e8", F8),
    req("status", S),
    opt("created_unix_ns", TS),
    req("updated_unix_ns", TS),
)

FILL = _spec(
    req("node_order_id", ID),
    req("venue_execution_id", ID),
    opt("venue", S),  # named in the topic catalog, absent from the example
    req("symbol", S),
    req("side", S),
    req("qty_1e8", F8),
    req("price_1e9", F9),
    opt("fee_1e9", F9),
    opt("edge_id", S),
    req("ts_unix_ns", TS),
)

TCA_REPORT = _spec(
    req("node_order_id", ID),
    opt("client_id", S),
    req("symbol", S),
    req("side", S),
    req("achieved_vwap_1e9", F9),
    opt("expected_fill_1e9", F9),
    opt("total_fees_1e9", F9),
    opt("fee_cost_bps", D),
    opt("expected_fee_bps", D),
    opt("fee_prediction_error_bps", D),
    opt("spread_cost_bps", D),
    opt("market_impact_bps", D),
    opt("implementation_shortfall_bps", D),
    opt("savings_vs_benchmark_bps", D),
    # The vendor: "false (or omitted)". Omitted means false, so it is stored so.
    opt("is_prediction", Kind.BOOL, default=False),
    opt("achieved_implied_prob_bps", D),
    opt("arrival_implied_prob_bps", D),
    opt("probability_slippage_bps", D),
    opt("execution_time_ms", L),
    opt("num_fills", L),
)

# Undocumented by the vendor: everything but the deployment is optional.
TRACE = _spec(
    req("deployment_id", ID),
    opt("seq", L),
    opt("function", S),
    opt("payload", Kind.JSON),
    opt("duration_ns", L),  # a duration, not a point in time: no companion
    opt("ts_ns", TS),
)

# REST funding rows carry snapshot_age_ms instead of ts_ns, so ts_ns is optional.
FUNDING_RATE = _spec(
    req("venue", S),
    req("symbol", S),
    req("rate_bps_per_hour", D),
    opt("predicted_rate_bps_per_hour", D),
    opt("mark_price_1e9", F9),
    opt("open_interest_1e8", F8),
    opt("next_settlement_ns", TS),
    opt("ts_ns", TS),
    opt("snapshot_age_ms", L),
)

CONTRIBUTOR = _spec(
    req("venue", S),
    opt("instrument_type", S),
    req("mid_1e9", F9),
    opt("weight", D),
    opt("staleness_ms", L),
)

FAIR_PRICE = _spec(
    req("underlying", S),
    req("fair_mid_1e9", F9),
    opt("spot_mid_1e9", F9),
    opt("perp_mid_1e9", F9),
    opt("basis_bps", D),
    opt("confidence", D),
    opt("contributors", Kind.RECORDS, default=[], items=CONTRIBUTOR),
    req("cc_ts_ns", TS),
)

NEW_MARKET = _spec(
    req("kind", S),
    req("venue", S),
    opt("slug", S),
    opt("symbol", S),
    opt("question", S),
    opt("outcomes", Kind.STRING_LIST, default=[]),
    opt("outcome_token_ids", Kind.ID_LIST, default=[]),
    opt("yes_token_id", ID),
    opt("no_token_id", ID),
    req("event_id", ID),
    opt("neg_risk", Kind.BOOL),
    opt("volume_24h", D),
    opt("volume_total", D),
    opt("best_yes_bid", D),
    opt("best_yes_ask", D),
    opt("best_no_bid", D),
    opt("best_no_ask", D),
    opt("start_date", S),
    opt("end_date", S),
    opt("url", S),
    req("observed_at_ns", TS),
)

MARKET_RESOLVED = _spec(
    req("kind", S),
    req("venue", S),
    req("event_id", ID),
    opt("winning_outcome", S),
    opt("winning_token_id", ID),
    opt("losing_token_id", ID),
    req("observed_at_ns", TS),
)

# Undocumented by the vendor. threshold/value are doubles (comparable in any
# warehouse; alert levels are not money that must reconcile), and quoted
# numbers are accepted because an undocumented feed may well quote them.
ALERT = _spec(
    req("alert_id", ID),
    opt("rule_id", ID),
    opt("rule_name", S),
    opt("symbol", S),
    opt("condition", S),
    opt("threshold", Kind.LENIENT_DOUBLE),
    opt("value", Kind.LENIENT_DOUBLE),
    opt("triggered_at_ns", TS),
)

CONTROL_EVENT = _spec(
    req("kind", S),
    req("sequence_topic", S),
    opt("dropped", L),
    opt("reason", S),
    req("epoch", L),
    req("at_ns", TS),
    req("instance", S),
    opt("detail_json", S),
)

RECORD_SPECS: dict[Family, RecordSpec] = {
    Family.prices: PRICE,
    Family.book: BOOK_UPDATE,
    Family.orders: ORDER,
    Family.fills: FILL,
    Family.tca: TCA_REPORT,
    Family.traces: TRACE,
    Family.funding: FUNDING_RATE,
    Family.fair_price: FAIR_PRICE,
    Family.markets_new: NEW_MARKET,
    Family.markets_resolved: MARKET_RESOLVED,
    Family.alerts: ALERT,
    Family.control: CONTROL_EVENT,
}

# The vendor field that says when the event happened (None: the payload has
# no time of its own, as with TCA reports).
EVENT_TIME_FIELD: dict[Family, str | None] = {
    Family.prices: "ts_ns",
    Family.book: "ts_ns",
    Family.orders: "updated_unix_ns",
    Family.fills: "ts_unix_ns",
    Family.tca: None,
    Family.traces: "ts_ns",
    Family.funding: "ts_ns",
    Family.fair_price: "cc_ts_ns",
    Family.markets_new: "observed_at_ns",
    Family.markets_resolved: "observed_at_ns",
    Family.alerts: "triggered_at_ns",
    Family.control: "at_ns",
}
