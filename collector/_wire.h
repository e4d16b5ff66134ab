/* Shared pieces of the OTLP wire decoders (_logwire.c, _spanwire.c): protobuf wire
 * reading, Arrow column buffers, AnyValue/KeyValue as orjson-identical JSON text and as
 * Python values, ids and times checked the way collector/values.py checks them.
 *
 * Header-only (static inline) so each extension module compiles it in. */
#ifndef JOBTRAIL_WIRE_H
#define JOBTRAIL_WIRE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MIN_TIME_NS 946684800000000000ULL
#define MAX_TIME_NS 7258118400000000000ULL
#define MAX_DEPTH 32

enum { OK = 0, UNSUPPORTED = 1, NOMEM = -1, PYERR = -2 /* a Python exception is set */ };
/* ---- growable byte buffers ------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static inline int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *p = PyMem_RawRealloc(b->p, cap); /* raw: Arrow may free it without the GIL */
    if (!p) return NOMEM;
    b->p = p;
    b->cap = cap;
    return OK;
}

static inline int buf_put(Buf *b, const void *src, size_t n) {
    if (buf_reserve(b, n)) return NOMEM;
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    return OK;
}

static inline int buf_putc(Buf *b, char c) {
    if (buf_reserve(b, 1)) return NOMEM;
    b->p[b->len++] = c;
    return OK;
}

static inline int buf_puts(Buf *b, const char *s) { return buf_put(b, s, strlen(s)); }

static inline void buf_free(Buf *b) {
    PyMem_RawFree(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- Arrow columns ------------------------------------------------------------------ */

typedef enum { C_STR, C_I64, C_I8, C_F64 } Kind;

typedef struct {
    Kind kind;
    Buf data, offsets, valid;
    Py_ssize_t n, nulls;
} Col;

static inline int col_mark(Col *c, int valid) {
    size_t byte = (size_t)(c->n / 8);
    if (byte >= c->valid.len) {
        if (buf_putc(&c->valid, 0)) return NOMEM;
    }
    if (valid)
        c->valid.p[byte] |= (char)(1u << (c->n % 8));
    else
        c->nulls++;
    c->n++;
    return OK;
}

/* A string row ends: its bytes are already in data. */
static inline int str_end(Col *c, int valid) {
    if (c->data.len > INT32_MAX) return UNSUPPORTED;
    int32_t end = (int32_t)c->data.len;
    if (c->n == 0 && c->offsets.len == 0) {
        int32_t zero = 0;
        if (buf_put(&c->offsets, &zero, 4)) return NOMEM;
    }
    if (buf_put(&c->offsets, &end, 4)) return NOMEM;
    return col_mark(c, valid);
}

static inline int str_val(Col *c, const char *s, size_t n) {
    if (buf_put(&c->data, s, n)) return NOMEM;
    return str_end(c, 1);
}

static inline int str_null(Col *c) { return str_end(c, 0); }

static inline int i64_val(Col *c, int64_t v, int valid) {
    if (!valid) v = 0;
    if (buf_put(&c->data, &v, 8)) return NOMEM;
    return col_mark(c, valid);
}

static inline int f64_val(Col *c, double v, int valid) {
    if (!valid) v = 0;
    if (buf_put(&c->data, &v, 8)) return NOMEM;
    return col_mark(c, valid);
}

static inline int i8_val(Col *c, int8_t v) {
    if (buf_put(&c->data, &v, 1)) return NOMEM;
    return col_mark(c, 1);
}
/* ---- protobuf wire reading ---------------------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
} Rd;

typedef struct {
    uint32_t num, wt;
    uint64_t u;          /* varint, fixed64 and fixed32 values */
    const uint8_t *ptr;  /* length-delimited payload */
    size_t len;
} Field;

static inline int rd_varint(Rd *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return UNSUPPORTED;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return OK;
        }
    }
    return UNSUPPORTED;
}

/* RD_FIELD: a field was read into f; RD_END: end of the message; RD_BAD: a wire type
 * OTLP does not use (groups) or a length past the end. */
#define RD_END 0
#define RD_FIELD 1
#define RD_BAD 2
static inline int rd_field(Rd *r, Field *f) {
    if (r->p >= r->end) return RD_END;
    uint64_t tag;
    if (rd_varint(r, &tag)) return RD_BAD;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (uint32_t)(tag & 7);
    f->ptr = NULL;
    f->len = 0;
    f->u = 0;
    switch (f->wt) {
    case 0:
        if (rd_varint(r, &f->u)) return RD_BAD;
        return RD_FIELD;
    case 1:
        if (r->end - r->p < 8) return RD_BAD;
        memcpy(&f->u, r->p, 8); /* little-endian hosts only (checked at import) */
        r->p += 8;
        return RD_FIELD;
    case 5: {
        uint32_t v;
        if (r->end - r->p < 4) return RD_BAD;
        memcpy(&v, r->p, 4);
        f->u = v;
        r->p += 4;
        return RD_FIELD;
    }
    case 2: {
        uint64_t n;
        if (rd_varint(r, &n)) return RD_BAD;
        if (n > (uint64_t)(r->end - r->p)) return RD_BAD;
        f->ptr = r->p;
        f->len = (size_t)n;
        r->p += n;
        return RD_FIELD;
    }
    default:
        return RD_BAD; /* groups: not in OTLP */
    }
}

static inline Rd rd_of(const uint8_t *p, size_t n) {
    Rd r = {p, p + n};
    return r;
}

/* ---- JSON text as orjson writes it ---------------------------------------------------- */

static inline int json_str(Buf *b, const uint8_t *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (buf_reserve(b, n + 2)) return NOMEM;
    b->p[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (buf_put(b, s + run, i - run)) return NOMEM;
        run = i + 1;
        char esc[7] = {'\\', 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        if (buf_put(b, esc, len)) return NOMEM;
    }
    if (buf_put(b, s + run, n - run)) return NOMEM;
    return buf_putc(b, '"');
}

static inline int json_int(Buf *b, int64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    return buf_put(b, tmp, (size_t)n);
}

/* Shortest round-trip repr, written the way orjson writes it: "null" for NaN and the
 * infinities, no zero padding in the exponent, plain decimals for exponent -5. */
static inline int json_double(Buf *b, double v) {
    if (!Py_IS_FINITE(v)) return buf_puts(b, "null");
    char *r = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!r) return NOMEM;
    int rc = OK;
    char *e = strchr(r, 'e');
    if (!e) {
        rc = buf_puts(b, r);
    } else {
        char sign = e[1];
        const char *digits = e + 2;
        while (*digits == '0' && digits[1]) digits++;
        if (sign == '-' && strcmp(digits, "5") == 0) {
            const char *m = r;
            if (*m == '-') rc = buf_putc(b, *m++);
            if (!rc) rc = buf_puts(b, "0.0000");
            for (; !rc && m < e; m++)
                if (*m != '.') rc = buf_putc(b, *m);
        } else {
            rc = buf_put(b, r, (size_t)(e - r));
            if (!rc) rc = buf_putc(b, 'e');
            if (!rc) rc = buf_putc(b, sign);
            if (!rc) rc = buf_puts(b, digits);
        }
    }
    PyMem_Free(r);
    return rc;
}

static inline int base64(Buf *b, const uint8_t *s, size_t n) {
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (buf_reserve(b, (n + 2) / 3 * 4)) return NOMEM;
    char *o = b->p + b->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->p);
    return OK;
}

/* ---- AnyValue and KeyValue ------------------------------------------------------------- */

/* The value an AnyValue holds: the last member of its oneof on the wire wins. */
typedef struct {
    uint32_t kind; /* 0 unset, else the oneof field number (1..8) */
    uint64_t u;
    const uint8_t *ptr;
    size_t len;
} Value;

static inline int read_value(const uint8_t *p, size_t n, Value *v) {
    Rd r = rd_of(p, n);
    Field f;
    int rc, nested = 0;
    v->kind = 0;
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        static const uint32_t wire[9] = {0, 2, 0, 0, 1, 2, 2, 2, 0};
        if (f.num < 1 || f.num > 8) continue;
        if (f.wt != wire[f.num]) return UNSUPPORTED;
        if (f.num == 5 || f.num == 6) {
            if (nested++) return UNSUPPORTED; /* repeated message members merge on the wire */
        }
        v->kind = f.num;
        v->u = f.u;
        v->ptr = f.ptr;
        v->len = f.len;
    }
    return rc == RD_END ? OK : UNSUPPORTED;
}

typedef struct {
    const uint8_t *key;
    size_t key_len;
    Value value;
} KV;

typedef struct {
    KV *items;
    size_t len, cap;
    /* Past KVS_LINEAR keys, duplicates are found through this open-addressing table of
     * item index + 1 (0: empty), so a record with a million attributes stays linear. */
    uint32_t *slots;
    size_t nslots;
} KVs;

#define KVS_LINEAR 32

static inline uint64_t key_hash(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static inline int kv_same_key(const KV *a, const KV *b) {
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

/* Index item ``i`` in the table; 1 if an earlier item has its key. */
static inline int kvs_slot(KVs *l, size_t i) {
    size_t mask = l->nslots - 1;
    size_t s = (size_t)key_hash(l->items[i].key, l->items[i].key_len) & mask;
    while (l->slots[s]) {
        if (kv_same_key(&l->items[l->slots[s] - 1], &l->items[i])) return 1;
        s = (s + 1) & mask;
    }
    l->slots[s] = (uint32_t)(i + 1);
    return 0;
}

/* (Re)build the table for the first ``l->len`` items, at most half full. */
static inline int kvs_index(KVs *l) {
    size_t nslots = 128;
    while (nslots < 4 * (l->len + 1)) nslots *= 2;
    uint32_t *slots = PyMem_Calloc(nslots, sizeof(uint32_t));
    if (!slots) return NOMEM;
    PyMem_Free(l->slots);
    l->slots = slots;
    l->nslots = nslots;
    for (size_t i = 0; i < l->len; i++) kvs_slot(l, i); /* no duplicates among them */
    return OK;
}

/* Forget the items (the buffers are kept for the next record). */
static inline void kvs_reset(KVs *l) {
    l->len = 0;
    PyMem_Free(l->slots);
    l->slots = NULL;
    l->nslots = 0;
}

static inline void kvs_free(KVs *l) {
    kvs_reset(l);
    PyMem_Free(l->items);
    l->items = NULL;
    l->cap = 0;
}

static inline int kvs_push(KVs *l, const uint8_t *p, size_t n) {
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        KV *items = PyMem_Realloc(l->items, cap * sizeof(KV));
        if (!items) return NOMEM;
        l->items = items;
        l->cap = cap;
    }
    if (l->len >= UINT32_MAX - 1) return UNSUPPORTED;
    KV *kv = &l->items[l->len];
    kv->key = (const uint8_t *)"";
    kv->key_len = 0;
    kv->value.kind = 0;
    Rd r = rd_of(p, n);
    Field f;
    int rc, values = 0;
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num == 1) {
            if (f.wt != 2) return UNSUPPORTED;
            kv->key = f.ptr;
            kv->key_len = f.len;
        } else if (f.num == 2) {
            if (f.wt != 2 || values++) return UNSUPPORTED;
            int vrc = read_value(f.ptr, f.len, &kv->value);
            if (vrc) return vrc;
        }
    }
    if (rc != RD_END) return UNSUPPORTED;
    /* duplicate key: the Python decoder keeps the last, so that request goes its way */
    if (l->len < KVS_LINEAR) {
        for (size_t i = 0; i < l->len; i++)
            if (kv_same_key(&l->items[i], kv)) return UNSUPPORTED;
    } else {
        if (!l->slots || 2 * (l->len + 1) > l->nslots) {
            if ((rc = kvs_index(l))) return rc;
        }
        if (kvs_slot(l, l->len)) return UNSUPPORTED;
    }
    l->len++;
    return OK;
}

static inline int json_value(Buf *b, const Value *v, int depth);

/* A KeyValueList / attribute list body (repeated KeyValue in field ``field``) as an object. */
static inline int json_object(Buf *b, const uint8_t *p, size_t n, uint32_t field, int depth) {
    KVs l = {0};
    Rd r = rd_of(p, n);
    Field f;
    int rc;
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num != field) continue;
        if (f.wt != 2) {
            rc = RD_BAD;
            break;
        }
        int prc = kvs_push(&l, f.ptr, f.len);
        if (prc) {
            kvs_free(&l);
            return prc;
        }
    }
    if (rc != RD_END) {
        kvs_free(&l);
        return UNSUPPORTED;
    }
    rc = buf_putc(b, '{');
    for (size_t i = 0; !rc && i < l.len; i++) {
        if (i) rc = buf_putc(b, ',');
        if (!rc) rc = json_str(b, l.items[i].key, l.items[i].key_len);
        if (!rc) rc = buf_putc(b, ':');
        if (!rc) rc = json_value(b, &l.items[i].value, depth);
    }
    if (!rc) rc = buf_putc(b, '}');
    kvs_free(&l);
    return rc;
}

static inline int json_array(Buf *b, const uint8_t *p, size_t n, int depth) {
    Rd r = rd_of(p, n);
    Field f;
    int rc, first = 1;
    if (buf_putc(b, '[')) return NOMEM;
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num != 1) continue;
        if (f.wt != 2) return UNSUPPORTED;
        Value v;
        int vrc = read_value(f.ptr, f.len, &v);
        if (!vrc && !first) vrc = buf_putc(b, ',');
        if (!vrc) vrc = json_value(b, &v, depth);
        if (vrc) return vrc;
        first = 0;
    }
    if (rc != RD_END) return UNSUPPORTED;
    return buf_putc(b, ']');
}

/* collector.values.any_value followed by orjson, for one value at ``depth``. */
static inline int json_value(Buf *b, const Value *v, int depth) {
    double d;
    switch (v->kind) {
    case 1: return json_str(b, v->ptr, v->len);
    case 2: return buf_puts(b, v->u ? "true" : "false");
    case 3: return json_int(b, (int64_t)v->u);
    case 4:
        memcpy(&d, &v->u, 8);
        return json_double(b, d);
    default: break;
    }
    if (depth > MAX_DEPTH) return buf_puts(b, "null");
    switch (v->kind) {
    case 5: return json_array(b, v->ptr, v->len, depth + 1);
    case 6: return json_object(b, v->ptr, v->len, 1, depth + 1);
    case 7:
        if (buf_putc(b, '"') || base64(b, v->ptr, v->len)) return NOMEM;
        return buf_putc(b, '"');
    default: return buf_puts(b, "null");
    }
}
/* ---- Python values of lifecycle records (collector.values.any_value) --------------------- */

static inline PyObject *py_value(const Value *v, int depth);

static inline PyObject *py_str(const uint8_t *p, size_t n) {
    return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, NULL);
}

/* Fields ``field`` of a message, each a KeyValue, into ``dict`` (later keys win). */
static inline int py_fill_dict(PyObject *dict, const uint8_t *p, size_t n, uint32_t field, int depth) {
    Rd r = rd_of(p, n);
    Field f;
    int rc;
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num != field) continue;
        if (f.wt != 2) return UNSUPPORTED;
        KVs one = {0};
        int krc = kvs_push(&one, f.ptr, f.len);
        if (krc) {
            PyMem_Free(one.items);
            return krc;
        }
        PyObject *key = py_str(one.items[0].key, one.items[0].key_len);
        PyObject *value = key ? py_value(&one.items[0].value, depth) : NULL;
        PyMem_Free(one.items);
        int bad = !value || PyDict_SetItem(dict, key, value);
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (bad) return PYERR;
    }
    return rc == RD_END ? OK : UNSUPPORTED;
}

/* A new reference, or NULL with an exception set (UNSUPPORTED wire: ValueError). */
static inline PyObject *py_value(const Value *v, int depth) {
    double d;
    switch (v->kind) {
    case 1: return py_str(v->ptr, v->len);
    case 2: return PyBool_FromLong(v->u != 0);
    case 3: return PyLong_FromLongLong((long long)(int64_t)v->u);
    case 4:
        memcpy(&d, &v->u, 8);
        return PyFloat_FromDouble(d);
    default: break;
    }
    if (depth > MAX_DEPTH || v->kind == 0 || v->kind == 8) Py_RETURN_NONE;
    if (v->kind == 7) {
        Buf b = {0};
        if (base64(&b, v->ptr, v->len)) return PyErr_NoMemory();
        PyObject *out = PyUnicode_FromStringAndSize(b.p ? b.p : "", (Py_ssize_t)b.len);
        buf_free(&b);
        return out;
    }
    int rc;
    PyObject *out;
    if (v->kind == 6) {
        out = PyDict_New();
        rc = out ? py_fill_dict(out, v->ptr, v->len, 1, depth + 1) : PYERR;
    } else {
        out = PyList_New(0);
        rc = out ? OK : PYERR;
        Rd r = rd_of(v->ptr, v->len);
        Field f;
        int frc = RD_END;
        while (!rc && (frc = rd_field(&r, &f)) == RD_FIELD) {
            if (f.num != 1) continue;
            Value item;
            rc = f.wt == 2 ? read_value(f.ptr, f.len, &item) : UNSUPPORTED;
            if (rc) break;
            PyObject *x = py_value(&item, depth + 1);
            if (!x || PyList_Append(out, x)) rc = PYERR;
            Py_XDECREF(x);
        }
        if (!rc && frc != RD_END) rc = UNSUPPORTED;
    }
    if (rc == OK) return out;
    Py_XDECREF(out);
    if (rc == NOMEM) return PyErr_NoMemory();
    if (rc == UNSUPPORTED) PyErr_SetString(PyExc_ValueError, "unexpected OTLP value encoding");
    return NULL;
}

static inline PyObject *py_hex(const uint8_t *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    char out[32];
    size_t zero = 1;
    for (size_t i = 0; i < n && i < 16; i++) {
        zero &= p[i] == 0;
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    if (n == 0 || n > 16 || zero) Py_RETURN_NONE;
    return PyUnicode_FromStringAndSize(out, (Py_ssize_t)(2 * n));
}

static inline int check_time(uint64_t ns) {
    return ns == 0 || (ns >= MIN_TIME_NS && ns < MAX_TIME_NS) ? OK : UNSUPPORTED;
}

static inline int hex_id(Col *c, const uint8_t *p, size_t n, size_t size) {
    static const char hex[] = "0123456789abcdef";
    if (n == 0) return str_null(c);
    if (n != size) return UNSUPPORTED;
    size_t zero = 1;
    for (size_t i = 0; i < n; i++) zero &= p[i] == 0;
    if (zero) return str_null(c);
    if (buf_reserve(&c->data, 2 * n)) return NOMEM;
    for (size_t i = 0; i < n; i++) {
        c->data.p[c->data.len++] = hex[p[i] >> 4];
        c->data.p[c->data.len++] = hex[p[i] & 15];
    }
    return str_end(c, 1);
}

/* ---- resources and scopes ----------------------------------------------------------------- */

/* Where the current item sits: its resource (attributes as JSON, service.name) and scope. */
typedef struct {
    Buf resource_json;
    const uint8_t *service;
    size_t service_len;
    int has_service;
    const uint8_t *scope;
    size_t scope_len;
    const uint8_t *scope_version;
    size_t scope_version_len;
} Where;

/* The resource's attributes as JSON and its service.name (a string, else unsupported). */
static inline int where_resource(Where *w, const uint8_t *p, size_t n) {
    w->resource_json.len = 0;
    w->has_service = 0;
    if (!p) return buf_puts(&w->resource_json, "{}");
    int rc = json_object(&w->resource_json, p, n, 1, 0);
    if (rc) return rc;
    /* service.name: found again among the attributes (json_object checked them) */
    Rd r = rd_of(p, n);
    Field f;
    while (rd_field(&r, &f) == RD_FIELD) {
        if (f.num != 1 || f.wt != 2) continue;
        KVs one = {0};
        rc = kvs_push(&one, f.ptr, f.len);
        if (!rc && one.items[0].key_len == 12 &&
            memcmp(one.items[0].key, "service.name", 12) == 0) {
            Value *v = &one.items[0].value;
            if (v->kind == 1) {
                w->has_service = 1;
                w->service = v->ptr;
                w->service_len = v->len;
            } else if (v->kind == 0 || v->kind == 8) {
                w->has_service = 0;
            } else {
                rc = UNSUPPORTED;
            }
        }
        PyMem_Free(one.items);
        if (rc) return rc;
    }
    return OK;
}

/* One log record or span (the bytes of field 2 of a ScopeLogs / ScopeSpans). */
typedef int (*ItemFn)(void *state, const Where *w, const uint8_t *p, size_t n);

/* A ScopeLogs / ScopeSpans: the scope (name, version) once, then each item. */
static inline int walk_scope(Where *w, const uint8_t *p, size_t n, ItemFn item, void *state) {
    Rd r = rd_of(p, n);
    Field f;
    int rc, scopes = 0;
    w->scope = w->scope_version = NULL;
    w->scope_len = w->scope_version_len = 0;
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num != 1) continue;
        if (f.wt != 2 || scopes++) return UNSUPPORTED; /* a repeated message merges */
        Rd sr = rd_of(f.ptr, f.len);
        Field sf;
        int src;
        while ((src = rd_field(&sr, &sf)) == RD_FIELD) {
            if (sf.num != 1 && sf.num != 2) continue;
            if (sf.wt != 2) return UNSUPPORTED;
            if (sf.num == 1) {
                w->scope = sf.ptr;
                w->scope_len = sf.len;
            } else {
                w->scope_version = sf.ptr;
                w->scope_version_len = sf.len;
            }
        }
        if (src != RD_END) return UNSUPPORTED;
    }
    if (rc != RD_END) return UNSUPPORTED;
    r = rd_of(p, n);
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num != 2) continue;
        if (f.wt != 2) return UNSUPPORTED;
        int irc = item(state, w, f.ptr, f.len);
        if (irc) return irc;
    }
    return rc == RD_END ? OK : UNSUPPORTED;
}

/* A ResourceLogs / ResourceSpans: the resource once, then each scope. */
static inline int walk_resource(Where *w, const uint8_t *p, size_t n, ItemFn item,
                                void *state) {
    Rd r = rd_of(p, n);
    Field f;
    int rc, resources = 0;
    const uint8_t *res = NULL;
    size_t res_len = 0;
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num != 1) continue;
        if (f.wt != 2 || resources++) return UNSUPPORTED;
        res = f.ptr;
        res_len = f.len;
    }
    if (rc != RD_END) return UNSUPPORTED;
    if ((rc = where_resource(w, res, res_len))) return rc;
    r = rd_of(p, n);
    while ((rc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num != 2) continue;
        if (f.wt != 2) return UNSUPPORTED;
        int src = walk_scope(w, f.ptr, f.len, item, state);
        if (src) return src;
    }
    return rc == RD_END ? OK : UNSUPPORTED;
}

/* An Export request: each ResourceLogs / ResourceSpans (field 1). */
static inline int walk_request(Where *w, const uint8_t *p, size_t n, ItemFn item,
                               void *state) {
    Rd r = rd_of(p, n);
    Field f;
    int rc = OK, frc;
    while (rc == OK && (frc = rd_field(&r, &f)) == RD_FIELD) {
        if (f.num != 1) continue;
        rc = f.wt == 2 ? walk_resource(w, f.ptr, f.len, item, state) : UNSUPPORTED;
    }
    if (rc == OK && frc != RD_END) rc = UNSUPPORTED;
    return rc;
}

/* ---- columns handed to Python ------------------------------------------------------------- */

static inline void cols_free(Col *cols, int n) {
    for (int i = 0; i < n; i++) {
        buf_free(&cols[i].data);
        buf_free(&cols[i].offsets);
        buf_free(&cols[i].valid);
    }
}

/* ---- the columns handed to Arrow without a copy (Arrow C data interface) ----------------- */

/* struct ArrowArray of arrow/c/abi.h */
typedef struct ArrowArray {
    int64_t length, null_count, offset, n_buffers, n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
} ArrowArray;

typedef struct {
    Col col;
    const void *buffers[3];
} ChildData;

typedef struct {
    int64_t n;
    ArrowArray *children;
    ArrowArray **pointers;
    const void *buffers[1];
} ParentData;

static void child_release(ArrowArray *a) {
    ChildData *d = a->private_data;
    buf_free(&d->col.data);
    buf_free(&d->col.offsets);
    buf_free(&d->col.valid);
    PyMem_RawFree(d);
    a->release = NULL;
}

static void parent_release(ArrowArray *a) {
    ParentData *d = a->private_data;
    for (int64_t i = 0; i < d->n; i++)
        if (d->children[i].release) d->children[i].release(&d->children[i]);
    PyMem_RawFree(d->children);
    PyMem_RawFree(d->pointers);
    PyMem_RawFree(d);
    a->release = NULL;
}

static void capsule_release(PyObject *capsule) {
    ArrowArray *a = PyCapsule_GetPointer(capsule, "arrow_array");
    if (a && a->release) a->release(a);
    PyMem_RawFree(a);
}

/* The columns as one struct array of ``rows`` rows in an "arrow_array" capsule (the
 * PyCapsule protocol's), their buffers moved into it: ``cols`` are left empty. NULL with
 * an exception set on failure (``cols`` untouched then). */
static inline PyObject *cols_capsule(Col *cols, int n, Py_ssize_t rows) {
    for (int i = 0; i < n; i++) {
        Col *c = &cols[i];
        if (c->n != rows) {
            PyErr_SetString(PyExc_SystemError, "wire decoder: columns of unequal length");
            return NULL;
        }
        /* buffers Arrow reads must exist even when empty: offsets start at 0 */
        if (c->kind == C_STR && c->offsets.len == 0) {
            int32_t zero = 0;
            if (buf_put(&c->offsets, &zero, 4)) return PyErr_NoMemory();
        }
        if (buf_reserve(&c->data, 1)) return PyErr_NoMemory();
    }
    ArrowArray *top = PyMem_RawCalloc(1, sizeof *top);
    ParentData *pd = PyMem_RawCalloc(1, sizeof *pd);
    ArrowArray *children = PyMem_RawCalloc((size_t)n, sizeof *children);
    ArrowArray **pointers = PyMem_RawCalloc((size_t)n, sizeof *pointers);
    ChildData **data = PyMem_RawCalloc((size_t)n, sizeof *data);
    int ok = top && pd && children && pointers && data;
    for (int i = 0; ok && i < n; i++) ok = (data[i] = PyMem_RawCalloc(1, sizeof **data)) != NULL;
    if (!ok) {
        for (int i = 0; data && i < n; i++) PyMem_RawFree(data[i]);
        PyMem_RawFree(data);
        PyMem_RawFree(pointers);
        PyMem_RawFree(children);
        PyMem_RawFree(pd);
        PyMem_RawFree(top);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < n; i++) {
        ChildData *d = data[i];
        d->col = cols[i];
        memset(&cols[i], 0, sizeof cols[i]);
        cols[i].kind = d->col.kind;
        Col *c = &d->col;
        d->buffers[0] = c->nulls ? c->valid.p : NULL;
        ArrowArray *a = &children[i];
        a->length = rows;
        a->null_count = c->nulls;
        if (c->kind == C_STR) {
            d->buffers[1] = c->offsets.p;
            d->buffers[2] = c->data.p;
            a->n_buffers = 3;
        } else {
            d->buffers[1] = c->data.p;
            a->n_buffers = 2;
        }
        a->buffers = d->buffers;
        a->release = child_release;
        a->private_data = d;
        pointers[i] = a;
    }
    PyMem_RawFree(data);
    pd->n = n;
    pd->children = children;
    pd->pointers = pointers;
    pd->buffers[0] = NULL;
    top->length = rows;
    top->n_buffers = 1;
    top->n_children = n;
    top->buffers = pd->buffers;
    top->children = pointers;
    top->release = parent_release;
    top->private_data = pd;
    PyObject *capsule = PyCapsule_New(top, "arrow_array", capsule_release);
    if (!capsule) {
        parent_release(top);
        PyMem_RawFree(top);
    }
    return capsule;
}

/* ---- one request ----------------------------------------------------------------------------- */

/* What a decoder keeps while it walks a request (the first member of its State). */
typedef struct {
    Col *cols; /* n_cols columns, in the State */
    int n_cols;
    KVs attrs;       /* the current item's attributes */
    PyObject *found; /* list: lifecycle records, or job and step candidate spans */
    int64_t received_us;
    Py_ssize_t rows;
} Decoding;

/* The current item's attributes as a dict (a new reference, or NULL with an exception). */
static inline PyObject *py_attrs(const Decoding *d) {
    PyObject *attrs = PyDict_New();
    if (!attrs) return NULL;
    for (size_t i = 0; i < d->attrs.len; i++) {
        const KV *kv = &d->attrs.items[i];
        PyObject *key = py_str(kv->key, kv->key_len);
        PyObject *value = key ? py_value(&kv->value, 0) : NULL;
        int bad = !value || PyDict_SetItem(attrs, key, value);
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (bad) {
            Py_DECREF(attrs);
            return NULL;
        }
    }
    return attrs;
}

/* The resource's service.name, or None (a new reference, or NULL with an exception). */
static inline PyObject *py_service(const Where *w) {
    if (w->has_service) return py_str(w->service, w->service_len);
    Py_RETURN_NONE;
}

/* Microseconds since the epoch, or None for 0 (unset). */
static inline PyObject *py_us(int64_t us) {
    if (us) return PyLong_FromLongLong((long long)us);
    Py_RETURN_NONE;
}

/* The body of a module's decode(body, received_us): every item of the request through
 * ``item`` (given ``d``, the first member of its State), then (rows, columns capsule,
 * found), None when the request needs the Python decoder, or NULL with an exception. */
static inline PyObject *decode_request(PyObject *args, Decoding *d, const Kind *kinds,
                                       ItemFn item) {
    Py_buffer body;
    long long received;
    if (!PyArg_ParseTuple(args, "y*L", &body, &received)) return NULL;
    Where w;
    memset(&w, 0, sizeof w);
    d->received_us = received;
    d->found = PyList_New(0);
    if (!d->found) {
        PyBuffer_Release(&body);
        return NULL;
    }
    for (int i = 0; i < d->n_cols; i++) d->cols[i].kind = kinds[i];
    int rc = walk_request(&w, body.buf, (size_t)body.len, item, d);
    PyBuffer_Release(&body);
    if (rc == OK && d->rows == 0) rc = UNSUPPORTED;
    PyObject *out = NULL;
    if (rc == OK) {
        PyObject *cols = cols_capsule(d->cols, d->n_cols, d->rows);
        out = cols ? Py_BuildValue("(nNO)", d->rows, cols, d->found) : NULL;
    }
    cols_free(d->cols, d->n_cols);
    kvs_free(&d->attrs);
    buf_free(&w.resource_json);
    Py_DECREF(d->found);
    if (rc == OK) return out;
    if (rc == NOMEM) return PyErr_NoMemory();
    if (rc == PYERR) return NULL;
    Py_RETURN_NONE;
}

/* The module's COLUMNS attribute: the column names in order (checked against the schema). */
static inline int add_column_names(PyObject *m, const char *const *names, int n) {
    PyObject *t = PyTuple_New(n);
    if (!t) return -1;
    for (int i = 0; i < n; i++) {
        PyObject *name = PyUnicode_FromString(names[i]);
        if (!name) {
            Py_DECREF(t);
            return -1;
        }
        PyTuple_SET_ITEM(t, i, name);
    }
    if (PyModule_AddObject(m, "COLUMNS", t)) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}

/* Fixed64 fields are read with memcpy: little-endian hosts only. */
static inline int little_endian(void) {
    uint16_t probe = 1;
    if (*(uint8_t *)&probe == 1) return 1;
    PyErr_SetString(PyExc_ImportError, "the OTLP wire decoders read fixed64 little-endian");
    return 0;
}

#endif
