/* Column-wise decoding of OTLP ExportTraceServiceRequest bytes into the ``spans`` table's
 * Arrow buffers.
 *
 * Walking each span, event and attribute through protobuf's Python wrappers costs 20 to
 * 40 µs per span; a job workload's spans (5% of its records) took half of the decoding
 * CPU. Like _logwire.c, this module reads the wire bytes of a request protobuf has already
 * parsed and validated, and appends every column value straight into Arrow buffers, with
 * attributes, events and links as the JSON text the Python decoder writes with orjson.
 *
 * Spans that may be jobs or steps (a job.type, job.step, cicd.pipeline.name or
 * cicd.pipeline.task.name attribute) also come back as Python values, for the job and step
 * updates the conventions make of them. A request with anything the per-span decoder
 * treats otherwise (a span to reject, duplicate keys, a singular message repeated on the
 * wire) returns None and is decoded span by span. tests/collector/test_span_columns.py
 * compares both decoders.
 */
#define PY_SSIZE_T_CLEAN
#include "_wire.h"

/* Column order: storage.model.SPAN_SCHEMA (checked by the Python side at import). */
enum {
    K_TRACE, K_SPAN, K_PARENT, K_NAME, K_KIND, K_START, K_END, K_DURATION, K_STATUS,
    K_STATUS_MSG, K_SERVICE, K_ATTRS, K_EVENTS, K_LINKS, K_RESOURCE, K_SCOPE,
    K_SCOPE_VERSION, K_RECEIVED, N_COLS
};
static const char *COL_NAMES[N_COLS] = {
    "trace_id", "span_id", "parent_span_id", "name", "kind", "start_time", "end_time",
    "duration_ms", "status_code", "status_message", "service", "attributes", "events",
    "links", "resource", "scope_name", "scope_version", "received_at"};
static const Kind COL_KINDS[N_COLS] = {
    C_STR, C_STR, C_STR, C_STR, C_I8, C_I64, C_I64, C_F64, C_I8,
    C_STR, C_STR, C_STR, C_STR, C_STR, C_STR, C_STR, C_STR, C_I64};

/* Attribute keys that make a span a job or step candidate (conventions.is_job_span /
 * is_step_span decide). */
#define WORD(s) s, sizeof(s) - 1
static const struct {
    const char *key;
    size_t len;
} CONVENTION_KEYS[] = {
    {WORD("job.type")},
    {WORD("job.step")},
    {WORD("cicd.pipeline.name")},
    {WORD("cicd.pipeline.task.name")},
};
#define N_CONVENTION_KEYS (sizeof CONVENTION_KEYS / sizeof CONVENTION_KEYS[0])

typedef struct {
    Decoding d; /* first: the item functions get a Decoding pointer */
    Col cols[N_COLS];
} State;

typedef struct {
    const uint8_t *p;
    size_t n;
} Bytes;

/* A string field's bytes (wire type 2), else unsupported. */
#define TAKE(dst)                         \
    do {                                  \
        if (f.wt != 2) return UNSUPPORTED; \
        (dst).p = f.ptr;                  \
        (dst).n = f.len;                  \
    } while (0)

static int json_hex(Buf *b, const uint8_t *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (buf_reserve(b, 2 * n + 2)) return NOMEM;
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = hex[p[i] >> 4];
        b->p[b->len++] = hex[p[i] & 15];
    }
    b->p[b->len++] = '"';
    return OK;
}

static int json_u64(Buf *b, uint64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    return buf_put(b, tmp, (size_t)n);
}

/* One Event as {"name","time_unix_nano","attributes"} JSON; with ``py`` also as a dict
 * appended to it. */
static int span_event(Buf *b, PyObject *py, const uint8_t *p, size_t n) {
    Rd r = rd_of(p, n);
    Field f;
    int rc;
    uint64_t time_ns = 0;
    Bytes name = {(const uint8_t *)"", 0};
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num == 1) {
            if (f.wt != 1) return UNSUPPORTED;
            time_ns = f.u;
        } else if (f.num == 2) {
            TAKE(name);
        }
    }
    if (rc != RD_END) return UNSUPPORTED;
    if ((rc = buf_puts(b, "{\"name\":")) || (rc = json_str(b, name.p, name.n)) ||
        (rc = buf_puts(b, ",\"time_unix_nano\":")) || (rc = json_u64(b, time_ns)) ||
        (rc = buf_puts(b, ",\"attributes\":")) || (rc = json_object(b, p, n, 3, 0)) ||
        (rc = buf_putc(b, '}')))
        return rc;
    if (!py) return OK;
    PyObject *attrs = PyDict_New();
    if (!attrs) return PYERR;
    if ((rc = py_fill_dict(attrs, p, n, 3, 0))) {
        Py_DECREF(attrs);
        return rc;
    }
    PyObject *d = Py_BuildValue("{s:N,s:K,s:N}", "name", py_str(name.p, name.n),
                                "time_unix_nano", (unsigned long long)time_ns, "attributes",
                                attrs);
    if (!d) return PYERR;
    rc = PyList_Append(py, d) ? PYERR : OK;
    Py_DECREF(d);
    return rc;
}

/* One Link as {"trace_id","span_id","attributes"} JSON (ids as hex of whatever bytes). */
static int span_link(Buf *b, const uint8_t *p, size_t n) {
    Rd r = rd_of(p, n);
    Field f;
    int rc;
    Bytes trace = {NULL, 0}, span = {NULL, 0};
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num == 1)
            TAKE(trace);
        else if (f.num == 2)
            TAKE(span);
    }
    if (rc != RD_END) return UNSUPPORTED;
    if ((rc = buf_puts(b, "{\"trace_id\":")) || (rc = json_hex(b, trace.p, trace.n)) ||
        (rc = buf_puts(b, ",\"span_id\":")) || (rc = json_hex(b, span.p, span.n)) ||
        (rc = buf_puts(b, ",\"attributes\":")) || (rc = json_object(b, p, n, 4, 0)) ||
        (rc = buf_putc(b, '}')))
        return rc;
    return OK;
}

/* The repeated message field ``field`` of a span as a JSON list (null when absent). */
static int json_list(Col *c, PyObject *py, const uint8_t *p, size_t n, uint32_t field) {
    Rd r = rd_of(p, n);
    Field f;
    int rc, items = 0;
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num != field) continue;
        if (f.wt != 2) return UNSUPPORTED;
        if ((rc = buf_putc(&c->data, items++ ? ',' : '['))) return rc;
        rc = field == 11 ? span_event(&c->data, py, f.ptr, f.len)
                         : span_link(&c->data, f.ptr, f.len);
        if (rc) return rc;
    }
    if (rc != RD_END) return UNSUPPORTED;
    if (!items) return str_null(c);
    if ((rc = buf_putc(&c->data, ']'))) return rc;
    return str_end(c, 1);
}

/* A span's id: hex, or None when empty or all zeroes (optional ids only). */
static int checked_id(const Bytes *id, size_t size, int required) {
    if (id->n == 0) return required ? UNSUPPORTED : OK;
    if (id->n != size) return UNSUPPORTED;
    size_t zero = 1;
    for (size_t i = 0; i < id->n; i++) zero &= id->p[i] == 0;
    return zero && required ? UNSUPPORTED : OK;
}

/* (trace_id, span_id, parent_span_id, name, start_us, end_us, status_code,
 *  status_message, attributes, events, service) for collector.decode's conventions step. */
static int convention_entry(State *s, const Where *w, const Bytes *trace, const Bytes *span,
                            const Bytes *parent, const Bytes *name, int64_t start_us,
                            int64_t end_us, int status, const Bytes *message,
                            PyObject *events) {
    PyObject *attrs = py_attrs(&s->d);
    if (!attrs) return PYERR;
    PyObject *service = py_service(w);
    Py_INCREF(events);
    PyObject *entry = Py_BuildValue(
        "(NNNNNNiNNNN)", py_hex(trace->p, trace->n), py_hex(span->p, span->n),
        py_hex(parent->p, parent->n), py_str(name->p, name->n), py_us(start_us),
        py_us(end_us), status, py_str(message->p, message->n), attrs, events, service);
    if (!entry) return PYERR;
    int bad = PyList_Append(s->d.found, entry);
    Py_DECREF(entry);
    return bad ? PYERR : OK;
}

/* The Status message: code and message, or unsupported when repeated (messages merge). */
static int status_of(const uint8_t *p, size_t n, int64_t *code, Bytes *message) {
    Rd r = rd_of(p, n);
    Field f;
    int rc;
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num == 2) {
            TAKE(*message);
        } else if (f.num == 3) {
            if (f.wt != 0) return UNSUPPORTED;
            *code = (int64_t)f.u;
        }
    }
    return rc == RD_END ? OK : UNSUPPORTED;
}

static int span(void *state, const Where *w, const uint8_t *p, size_t n) {
    State *s = state;
    Rd r = rd_of(p, n);
    Field f;
    int rc, statuses = 0;
    uint64_t start_ns = 0, end_ns = 0;
    int64_t kind = 0, code = 0;
    Bytes trace = {NULL, 0}, id = {NULL, 0}, parent = {NULL, 0};
    Bytes name = {(const uint8_t *)"", 0}, message = {(const uint8_t *)"", 0};
    kvs_reset(&s->d.attrs);
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        switch (f.num) {
        case 1: TAKE(trace); break;
        case 2: TAKE(id); break;
        case 4: TAKE(parent); break;
        case 5: TAKE(name); break;
        case 6:
            if (f.wt != 0) return UNSUPPORTED;
            kind = (int64_t)f.u;
            break;
        case 7:
            if (f.wt != 1) return UNSUPPORTED;
            start_ns = f.u;
            break;
        case 8:
            if (f.wt != 1) return UNSUPPORTED;
            end_ns = f.u;
            break;
        case 9:
            if (f.wt != 2) return UNSUPPORTED;
            if ((rc = kvs_push(&s->d.attrs, f.ptr, f.len))) return rc;
            break;
        case 15:
            if (f.wt != 2 || statuses++) return UNSUPPORTED;
            if ((rc = status_of(f.ptr, f.len, &code, &message))) return rc;
            break;
        default: break;
        }
    }
    if (rc != RD_END) return UNSUPPORTED;
    /* what collector.decode rejects (hex_id, micros, enum_value) goes to the Python path */
    if (checked_id(&trace, 16, 1) || checked_id(&id, 8, 1) || checked_id(&parent, 8, 0) ||
        check_time(start_ns) || check_time(end_ns) || kind < 0 || kind > 5 || code < 0 ||
        code > 2)
        return UNSUPPORTED;

    int candidate = 0;
    for (size_t i = 0; i < s->d.attrs.len && !candidate; i++) {
        const KV *kv = &s->d.attrs.items[i];
        for (size_t k = 0; k < N_CONVENTION_KEYS; k++)
            if (kv->key_len == CONVENTION_KEYS[k].len &&
                memcmp(kv->key, CONVENTION_KEYS[k].key, kv->key_len) == 0)
                candidate = 1;
    }

    Col *c = s->cols;
    int64_t start_us = (int64_t)(start_ns / 1000), end_us = (int64_t)(end_ns / 1000);
    if ((rc = hex_id(&c[K_TRACE], trace.p, trace.n, 16)) ||
        (rc = hex_id(&c[K_SPAN], id.p, id.n, 8)) ||
        (rc = hex_id(&c[K_PARENT], parent.p, parent.n, 8)) ||
        (rc = str_val(&c[K_NAME], (const char *)name.p, name.n)) ||
        (rc = i8_val(&c[K_KIND], (int8_t)kind)) ||
        (rc = i64_val(&c[K_START], start_us, start_us != 0)) ||
        (rc = i64_val(&c[K_END], end_us, end_us != 0)) ||
        (rc = f64_val(&c[K_DURATION], (double)(end_us - start_us) / 1000,
                      start_us != 0 && end_us != 0)) ||
        (rc = i8_val(&c[K_STATUS], (int8_t)code)))
        return rc;
    rc = message.n ? str_val(&c[K_STATUS_MSG], (const char *)message.p, message.n)
                   : str_null(&c[K_STATUS_MSG]);
    if (rc) return rc;
    rc = w->has_service ? str_val(&c[K_SERVICE], (const char *)w->service, w->service_len)
                        : str_null(&c[K_SERVICE]);
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

    PyObject *events = NULL;
    if (candidate && !(events = PyList_New(0))) return PYERR;
    rc = json_list(&c[K_EVENTS], events, p, n, 11);
    if (!rc) rc = json_list(&c[K_LINKS], NULL, p, n, 13);
    if (!rc) rc = str_val(&c[K_RESOURCE], w->resource_json.p, w->resource_json.len);
    if (!rc)
        rc = w->scope_len ? str_val(&c[K_SCOPE], (const char *)w->scope, w->scope_len)
                          : str_null(&c[K_SCOPE]);
    if (!rc)
        rc = w->scope_version_len ? str_val(&c[K_SCOPE_VERSION], (const char *)w->scope_version,
                                            w->scope_version_len)
                                  : str_null(&c[K_SCOPE_VERSION]);
    if (!rc) rc = i64_val(&c[K_RECEIVED], s->d.received_us, 1);
    if (!rc && candidate)
        rc = convention_entry(s, w, &trace, &id, &parent, &name, start_us, end_us, (int)code,
                              &message, events);
    Py_XDECREF(events);
    if (rc) return rc;
    s->d.rows++;
    return OK;
}

PyDoc_STRVAR(decode_doc,
             "decode(body, received_us) -> (rows, columns, conventions) | None\n\n"
             "The spans table's columns of a serialized ExportTraceServiceRequest: a\n"
             "PyCapsule holding one Arrow struct array (C data interface) of COLUMNS,\n"
             "and per job or step candidate span (trace_id, span_id, parent_span_id, name,\n"
             "start_us, end_us, status_code, status_message, attributes, events, service);\n"
             "None when the request needs the per-span decoder.");

static PyObject *decode(PyObject *self, PyObject *args) {
    State s;
    memset(&s, 0, sizeof s);
    s.d.cols = s.cols;
    s.d.n_cols = N_COLS;
    return decode_request(args, &s.d, COL_KINDS, span);
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_spanwire",
    "OTLP trace requests to Arrow buffers of the spans table (see span_columns.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__spanwire(void) {
    if (!little_endian()) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m && add_column_names(m, COL_NAMES, N_COLS)) Py_CLEAR(m);
    return m;
}
