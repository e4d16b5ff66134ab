/* Column-wise decoding of OTLP ExportLogsServiceRequest bytes into the ``logs`` table's
 * Arrow buffers.
 *
 * Walking each log record and attribute through protobuf's Python wrappers costs about
 * 12 µs per record, half of the server's CPU under load. This module reads the protobuf
 * wire format of the request (already parsed and validated by protobuf, so it is well
 * formed and its strings are UTF-8) and appends every column value straight into Arrow
 * buffers: validity bitmaps, int32 offsets and data. The attribute maps become the same
 * JSON text the Python decoder writes with orjson, byte for byte.
 *
 * It covers what clients send: any attribute values, valid ids and times. A request with
 * something the per-record decoder words differently (a record to reject, duplicate keys,
 * a non-string value in a column-copied attribute, a singular message repeated on the
 * wire, non-ASCII severity text where the level depends on it) returns None, and the
 * caller decodes that request record by record. tests/collector/test_log_columns.py
 * compares both decoders on varied requests.
 */
#include "_wire.h"

/* Column order: storage.model.LOG_SCHEMA (checked by the Python side at import). */
enum {
    K_TIME, K_OBSERVED, K_TRACE, K_SPAN, K_SEVNUM, K_SEVTEXT, K_LEVEL, K_BODY, K_ATTRS,
    K_EVENT, K_JOB_ID, K_STEP, K_STEP_SPAN, K_CATEGORY, K_IOSTREAM, K_EXC_TYPE, K_EXC_MSG,
    K_STACK, K_SERVICE, K_RESOURCE, K_SCOPE, K_RECEIVED, N_COLS
};
static const char *COL_NAMES[N_COLS] = {
    "time", "observed_time", "trace_id", "span_id", "severity_number", "severity_text",
    "level", "body", "attributes", "event_name", "job_id", "step", "step_span_id",
    "category", "iostream", "exception_type", "exception_message", "stack_trace",
    "service", "resource", "scope_name", "received_at"};
static const Kind COL_KINDS[N_COLS] = {
    C_I64, C_I64, C_STR, C_STR, C_I8,  C_STR, C_STR, C_STR, C_STR, C_STR, C_STR,
    C_STR, C_STR, C_STR, C_STR, C_STR, C_STR, C_STR, C_STR, C_STR, C_STR, C_I64};

typedef struct {
    Decoding d; /* first: the item functions get a Decoding pointer */
    Col cols[N_COLS];
} State;

/* (event, trace_id, span_id, time_us, attributes, service) for collector.decode._lifecycle */
static int lifecycle_entry(State *s, const Where *w, const uint8_t *event, size_t event_len,
                           const uint8_t *trace, size_t trace_len, const uint8_t *span,
                           size_t span_len, int64_t time_us) {
    PyObject *attrs = py_attrs(&s->d);
    if (!attrs) return PYERR;
    PyObject *service = py_service(w);
    PyObject *entry = Py_BuildValue("(NNNNNN)", py_str(event, event_len),
                                    py_hex(trace, trace_len), py_hex(span, span_len),
                                    py_us(time_us), attrs, service);
    if (!entry) return PYERR;
    int bad = PyList_Append(s->d.found, entry);
    Py_DECREF(entry);
    return bad ? PYERR : OK;
}

/* ---- the request ----------------------------------------------------------------------- */

/* Attributes copied into columns, with the column each fills (K_EVENT: event.name, which
 * only fills the column when the record's own event_name is empty). */
#define WORD(s) s, sizeof(s) - 1
static const struct {
    const char *key;
    size_t len;
    int col;
} LOOKUPS[] = {
    {WORD("event.name"), K_EVENT},          {WORD("job.id"), K_JOB_ID},
    {WORD("job.step"), K_STEP},             {WORD("log.category"), K_CATEGORY},
    {WORD("log.iostream"), K_IOSTREAM},     {WORD("exception.type"), K_EXC_TYPE},
    {WORD("exception.message"), K_EXC_MSG}, {WORD("exception.stacktrace"), K_STACK},
};
#define N_LOOKUPS (sizeof LOOKUPS / sizeof LOOKUPS[0])

static const char *LIFECYCLE[] = {"job.queued", "job.started", "job.progress",
                                  "job.heartbeat", "step.started"};
#define N_LIFECYCLE (sizeof LIFECYCLE / sizeof LIFECYCLE[0])



static int ascii(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] & 0x80) return 0;
    return 1;
}

static int ieq(const uint8_t *s, size_t n, const char *word) {
    size_t w = strlen(word);
    if (n != w) return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 'A' && c <= 'Z') c += 32;
        if (c != (uint8_t)word[i]) return 0;
    }
    return 1;
}

/* semconv.level_for */
static int level(Col *c, int32_t sev, const uint8_t *text, size_t n) {
    const char *name;
    if (sev <= 0) {
        if (!ascii(text, n)) return UNSUPPORTED;
        static const char *levels[] = {"debug", "info", "success", "warn", "error", "fatal"};
        name = "info";
        if (n >= 4 && ieq(text, 4, "warn"))
            name = "warn";
        else if (ieq(text, n, "critical") || ieq(text, n, "crit"))
            name = "fatal";
        else
            for (size_t i = 0; i < 6; i++)
                if (ieq(text, n, levels[i])) name = levels[i];
    } else if (sev < 9) {
        name = "debug";
    } else if (sev < 13) {
        if (sev >= 10 && !ascii(text, n)) return UNSUPPORTED;
        name = sev >= 10 && ieq(text, n, "success") ? "success" : "info";
    } else if (sev < 17) {
        name = "warn";
    } else if (sev < 21) {
        name = "error";
    } else {
        name = "fatal";
    }
    return str_val(c, name, strlen(name));
}

static int record(void *state, const Where *w, const uint8_t *p, size_t n) {
    State *s = state;
    Rd r = rd_of(p, n);
    Field f;
    int rc, bodies = 0;
    uint64_t time_ns = 0, observed_ns = 0, sev_u = 0;
    const uint8_t *sev_text = (const uint8_t *)"", *trace = NULL, *span = NULL;
    const uint8_t *event = (const uint8_t *)"";
    size_t sev_text_len = 0, trace_len = 0, span_len = 0, event_len = 0;
    Value body = {0};
    kvs_reset(&s->d.attrs);
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        switch (f.num) {
        case 1:
            if (f.wt != 1) return UNSUPPORTED;
            time_ns = f.u;
            break;
        case 2:
            if (f.wt != 0) return UNSUPPORTED;
            sev_u = f.u;
            break;
        case 3:
            if (f.wt != 2) return UNSUPPORTED;
            sev_text = f.ptr;
            sev_text_len = f.len;
            break;
        case 5:
            if (f.wt != 2 || bodies++) return UNSUPPORTED;
            if ((rc = read_value(f.ptr, f.len, &body))) return rc;
            break;
        case 6:
            if (f.wt != 2) return UNSUPPORTED;
            if ((rc = kvs_push(&s->d.attrs, f.ptr, f.len))) return rc;
            break;
        case 9:
            if (f.wt != 2) return UNSUPPORTED;
            trace = f.ptr;
            trace_len = f.len;
            break;
        case 10:
            if (f.wt != 2) return UNSUPPORTED;
            span = f.ptr;
            span_len = f.len;
            break;
        case 11:
            if (f.wt != 1) return UNSUPPORTED;
            observed_ns = f.u;
            break;
        case 12:
            if (f.wt != 2) return UNSUPPORTED;
            event = f.ptr;
            event_len = f.len;
            break;
        default: break;
        }
    }
    if (rc != RD_END) return UNSUPPORTED;
    int32_t sev = (int32_t)(int64_t)sev_u;
    if (sev < 0 || sev > 24 || check_time(time_ns) || check_time(observed_ns))
        return UNSUPPORTED;

    /* the attributes copied into columns: strings only (the Python decoder str()s others) */
    const KV *found[N_LOOKUPS] = {0};
    for (size_t i = 0; i < s->d.attrs.len; i++) {
        const KV *kv = &s->d.attrs.items[i];
        for (size_t k = 0; k < N_LOOKUPS; k++) {
            if (kv->key_len == LOOKUPS[k].len &&
                memcmp(kv->key, LOOKUPS[k].key, kv->key_len) == 0) {
                uint32_t kind = kv->value.kind;
                if (kind != 0 && kind != 1 && kind != 8) return UNSUPPORTED;
                found[k] = kind == 1 ? kv : NULL;
            }
        }
    }

    Col *c = s->cols;
    int64_t time_us = time_ns ? (int64_t)(time_ns / 1000) : 0;
    int64_t observed_us = observed_ns ? (int64_t)(observed_ns / 1000) : 0;
    if ((rc = i64_val(&c[K_TIME],
                      time_us ? time_us : observed_us ? observed_us : s->d.received_us, 1)))
        return rc;
    if ((rc = i64_val(&c[K_OBSERVED], observed_us, observed_us != 0))) return rc;
    if ((rc = hex_id(&c[K_TRACE], trace, trace_len, 16))) return rc;
    if ((rc = hex_id(&c[K_SPAN], span, span_len, 8))) return rc;
    if ((rc = i8_val(&c[K_SEVNUM], (int8_t)sev))) return rc;
    rc = sev_text_len ? str_val(&c[K_SEVTEXT], (const char *)sev_text, sev_text_len)
                      : str_null(&c[K_SEVTEXT]);
    if (rc || (rc = level(&c[K_LEVEL], sev, sev_text, sev_text_len))) return rc;

    /* body: strings (and bytes, as base64) as they are, other values as JSON, unset null */
    Col *bc = &c[K_BODY];
    if (body.kind == 0 || body.kind == 8) {
        rc = str_null(bc);
    } else if (body.kind == 1) {
        rc = str_val(bc, (const char *)body.ptr, body.len);
    } else if (body.kind == 7) {
        rc = base64(&bc->data, body.ptr, body.len);
        if (!rc) rc = str_end(bc, 1);
    } else {
        rc = json_value(&bc->data, &body, 0);
        if (!rc) rc = str_end(bc, 1);
    }
    if (rc) return rc;

    Buf *ab = &c[K_ATTRS].data;
    rc = buf_putc(ab, '{');
    for (size_t i = 0; !rc && i < s->d.attrs.len; i++) {
        const KV *kv = &s->d.attrs.items[i];
        if (i) rc = buf_putc(ab, ',');
        if (!rc) rc = json_str(ab, kv->key, kv->key_len);
        if (!rc) rc = buf_putc(ab, ':');
        if (!rc) rc = json_value(ab, &kv->value, 0);
    }
    if (rc || (rc = buf_putc(ab, '}')) || (rc = str_end(&c[K_ATTRS], 1))) return rc;

    /* event_name: the record's field, else the event.name attribute; empty is none */
    if (!event_len && found[0]) {
        event = found[0]->value.ptr;
        event_len = found[0]->value.len;
    }
    rc = event_len ? str_val(&c[K_EVENT], (const char *)event, event_len)
                   : str_null(&c[K_EVENT]);
    if (rc) return rc;
    for (size_t k = 1; k < N_LOOKUPS; k++) {
        Col *lc = &c[LOOKUPS[k].col];
        rc = found[k] ? str_val(lc, (const char *)found[k]->value.ptr, found[k]->value.len)
                      : str_null(lc);
        if (rc) return rc;
    }
    /* step_span_id: the span id of a record that names its step */
    rc = found[2] ? hex_id(&c[K_STEP_SPAN], span, span_len, 8) : str_null(&c[K_STEP_SPAN]);
    if (rc) return rc;

    rc = w->has_service ? str_val(&c[K_SERVICE], (const char *)w->service, w->service_len)
                        : str_null(&c[K_SERVICE]);
    if (!rc) rc = str_val(&c[K_RESOURCE], w->resource_json.p, w->resource_json.len);
    if (!rc)
        rc = w->scope_len ? str_val(&c[K_SCOPE], (const char *)w->scope, w->scope_len)
                          : str_null(&c[K_SCOPE]);
    if (!rc) rc = i64_val(&c[K_RECEIVED], s->d.received_us, 1);
    if (rc) return rc;

    for (size_t i = 0; event_len && i < N_LIFECYCLE; i++) {
        if (event_len == strlen(LIFECYCLE[i]) && memcmp(event, LIFECYCLE[i], event_len) == 0) {
            rc = lifecycle_entry(s, w, event, event_len, trace, trace_len, span, span_len,
                                 time_us ? time_us : observed_us);
            if (rc) return rc;
        }
    }
    s->d.rows++;
    return OK;
}

PyDoc_STRVAR(decode_doc,
             "decode(body, received_us) -> (rows, columns, lifecycle) | None\n\n"
             "The logs table's columns of a serialized ExportLogsServiceRequest: a\n"
             "PyCapsule holding one Arrow struct array (C data interface) of COLUMNS,\n"
             "and per lifecycle record (event, trace_id, span_id, time_us, attributes,\n"
             "service); None when the request needs the per-record decoder.");

static PyObject *decode(PyObject *self, PyObject *args) {
    State s;
    memset(&s, 0, sizeof s);
    s.d.cols = s.cols;
    s.d.n_cols = N_COLS;
    return decode_request(args, &s.d, COL_KINDS, record);
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_logwire",
    "OTLP log requests to Arrow buffers of the logs table (see log_columns.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__logwire(void) {
    if (!little_endian()) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m && add_column_names(m, COL_NAMES, N_COLS)) Py_CLEAR(m);
    return m;
}
