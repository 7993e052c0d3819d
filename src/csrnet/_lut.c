/* Trilinear 3D-LUT application for 8- and 16-bit RGB buffers, releasing the GIL.
 *
 * Written by hand because no maintained library does this well: Pillow's Color3DLUT is
 * 8-bit only, fixed point and single-threaded per call, and numpy's gathers take ~0.5 us a
 * pixel for 16-bit photos. This kernel reads interleaved RGB (uint8 or uint16), interpolates
 * a float32 table of size^3 nodes (red fastest, the .cube order, values may lie outside
 * [0, 1]) and writes the clipped, rounded result; Python splits the rows across threads.
 * The interpolation is the same as csrnet.lut.apply_lut_array (tests compare them).
 *
 * The table comes padded to 4 floats a node (R, G, B, unused) so that with GCC/Clang each
 * corner is one 16-byte vector load and the three channels interpolate in one SIMD lane set:
 * ~1.9x faster than per-channel scalar code on a 24 MP photo, same results. Other compilers
 * take the scalar loop.
 *
 * apply_grid does the same for a grid of lattices blended per pixel (CSRNet-L's fast path:
 * each pixel mixes its colour's value in the 4 nearest cells' lattices, bilinear weights).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#if (defined(__GNUC__) || defined(__clang__)) && !defined(CSR_SCALAR)
#define CSR_VECTOR 1
/* aligned(4): numpy only promises float alignment for the table. */
typedef float v4f __attribute__((vector_size(16), aligned(4)));
#endif

/* Interpolate node block c (pointer to the lower corner) with fractions fr, fg, fb and strides
 * sg, sb (in nodes); store the three channels scaled by MAXV, rounded and clipped into d[0..2]. */
#define INTERP(TYPE, MAXV)                                                                        \
    do {                                                                                          \
        INTERP_BODY(TYPE, MAXV)                                                                   \
    } while (0)

#ifdef CSR_VECTOR
#define INTERP_BODY(TYPE, MAXV)                                                                   \
    const v4f *v = (const v4f *)c;                                                                \
    v4f c00 = v[0] + fr * (v[1] - v[0]);                                                          \
    v4f c10 = v[sg] + fr * (v[sg + 1] - v[sg]);                                                   \
    v4f c01 = v[sb] + fr * (v[sb + 1] - v[sb]);                                                   \
    v4f c11 = v[sb + sg] + fr * (v[sb + sg + 1] - v[sb + sg]);                                    \
    v4f c0 = c00 + fg * (c10 - c00), c1 = c01 + fg * (c11 - c01);                                 \
    v4f res = (c0 + fb * (c1 - c0)) * (float)(MAXV) + 0.5f;                                       \
    for (int ch = 0; ch < 3; ch++) {                                                              \
        float x = res[ch];                                                                        \
        d[ch] = x <= 0.0f ? 0 : (x >= (float)(MAXV) ? (TYPE)(MAXV) : (TYPE)x);                   \
    }
#else
static inline float lerp(float a, float b, float t) { return a + t * (b - a); }
#define INTERP_BODY(TYPE, MAXV)                                                                   \
    for (int ch = 0; ch < 3; ch++) {                                                              \
        float c00 = lerp(c[ch], c[4 + ch], fr);                                                   \
        float c10 = lerp(c[4 * sg + ch], c[4 * sg + 4 + ch], fr);                                 \
        float c01 = lerp(c[4 * sb + ch], c[4 * sb + 4 + ch], fr);                                 \
        float c11 = lerp(c[4 * (sb + sg) + ch], c[4 * (sb + sg) + 4 + ch], fr);                   \
        float x = lerp(lerp(c00, c10, fg), lerp(c01, c11, fg), fb) * (MAXV) + 0.5f;               \
        d[ch] = x <= 0.0f ? 0 : (x >= (float)(MAXV) ? (TYPE)(MAXV) : (TYPE)x);                   \
    }
#endif

static void run16(const uint16_t *s, uint16_t *dst, Py_ssize_t n, const float *t, int size) {
    const float scale = (float)(size - 1) / 65535.0f;
    const Py_ssize_t sg = size, sb = (Py_ssize_t)size * size;
    for (Py_ssize_t k = 0; k < n; k++) {
        float pr = s[3 * k] * scale, pg = s[3 * k + 1] * scale, pb = s[3 * k + 2] * scale;
        int ir = (int)pr, ig = (int)pg, ib = (int)pb;
        if (ir > size - 2) ir = size - 2;
        if (ig > size - 2) ig = size - 2;
        if (ib > size - 2) ib = size - 2;
        const float fr = pr - ir, fg = pg - ig, fb = pb - ib;
        const float *c = t + 4 * (ib * sb + ig * sg + ir);
        uint16_t *d = dst + 3 * k;
        INTERP(uint16_t, 65535);
    }
}

/* 8-bit: the 256 possible values' cell offsets and fractions are tabulated once per call. */
static void run8(const uint8_t *s, uint8_t *dst, Py_ssize_t n, const float *t, int size) {
    const Py_ssize_t sg = size, sb = (Py_ssize_t)size * size;
    Py_ssize_t off_r[256], off_g[256], off_b[256];
    float frac[256];
    for (int v = 0; v < 256; v++) {
        float p = v * (float)(size - 1) / 255.0f;
        int i = (int)p;
        if (i > size - 2) i = size - 2;
        frac[v] = p - i;
        off_r[v] = (Py_ssize_t)i * 4;
        off_g[v] = (Py_ssize_t)i * sg * 4;
        off_b[v] = (Py_ssize_t)i * sb * 4;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        const uint8_t r = s[3 * k], g = s[3 * k + 1], b = s[3 * k + 2];
        const float fr = frac[r], fg = frac[g], fb = frac[b];
        const float *c = t + off_b[b] + off_g[g] + off_r[r];
        uint8_t *d = dst + 3 * k;
        INTERP(uint8_t, 255);
    }
}

static PyObject *apply(PyObject *self, PyObject *args) {
    Py_buffer src, dst, table;
    int size, bits;
    if (!PyArg_ParseTuple(args, "y*w*y*ii", &src, &dst, &table, &size, &bits)) return NULL;
    const Py_ssize_t item = bits == 8 ? 1 : 2;
    PyObject *result = NULL;
    if ((bits != 8 && bits != 16) || size < 2 || src.len != dst.len || src.len % (3 * item) != 0 ||
        table.len != (Py_ssize_t)size * size * size * 4 * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "apply: buffer sizes do not match (src, dst: RGB of bits; table: size^3 x 4 float32)");
    } else {
        Py_ssize_t n = src.len / (3 * item);
        Py_BEGIN_ALLOW_THREADS
        if (bits == 8) run8((const uint8_t *)src.buf, (uint8_t *)dst.buf, n, (const float *)table.buf, size);
        else run16((const uint16_t *)src.buf, (uint16_t *)dst.buf, n, (const float *)table.buf, size);
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&table);
    return result;
}

/* ---- a grid of lattices blended per pixel (CSRNet-L's fast path, csrnet.local) ----
 * tables holds gh x gw lattices (row-major cells, each size^3 x 4 float32 like the single table).
 * Each output pixel interpolates its colour trilinearly in the lattices of the 4 cells around it
 * and blends them with bilinear weights: row r uses cell rows yi[2r], yi[2r+1] with weight yw[r]
 * on the second, column c cell columns xi[2c], xi[2c+1] with weight xw[c] (Python computes these
 * taps, so any resampling convention fits). The trilinear cell and fractions are shared by the 4. */
typedef struct {
    const float *t; /* tables */
    Py_ssize_t cell; /* floats per lattice: 4 size^3 */
    Py_ssize_t sg, sb;
    int gw;
    const int32_t *yi, *xi;
    const float *yw, *xw;
} grid_t;

#ifdef CSR_VECTOR
static inline v4f tri4(const float *c, Py_ssize_t sg, Py_ssize_t sb, float fr, float fg, float fb) {
    const v4f *v = (const v4f *)c;
    v4f c00 = v[0] + fr * (v[1] - v[0]);
    v4f c10 = v[sg] + fr * (v[sg + 1] - v[sg]);
    v4f c01 = v[sb] + fr * (v[sb + 1] - v[sb]);
    v4f c11 = v[sb + sg] + fr * (v[sb + sg + 1] - v[sb + sg]);
    v4f c0 = c00 + fg * (c10 - c00), c1 = c01 + fg * (c11 - c01);
    return c0 + fb * (c1 - c0);
}
/* q[0..3]: the 4 cells' lower corners, w[0..3] their weights. */
#define GRID_INTERP(TYPE, MAXV)                                                                   \
    do {                                                                                          \
        v4f res = w0 * tri4(q0, g->sg, g->sb, fr, fg, fb) + w1 * tri4(q1, g->sg, g->sb, fr, fg, fb) + \
                  w2 * tri4(q2, g->sg, g->sb, fr, fg, fb) + w3 * tri4(q3, g->sg, g->sb, fr, fg, fb); \
        res = res * (float)(MAXV) + 0.5f;                                                         \
        for (int ch = 0; ch < 3; ch++) {                                                          \
            float x = res[ch];                                                                    \
            d[ch] = x <= 0.0f ? 0 : (x >= (float)(MAXV) ? (TYPE)(MAXV) : (TYPE)x);               \
        }                                                                                         \
    } while (0)
#else
static inline float tri1(const float *c, Py_ssize_t sg, Py_ssize_t sb, float fr, float fg, float fb) {
    float c00 = lerp(c[0], c[4], fr);
    float c10 = lerp(c[4 * sg], c[4 * sg + 4], fr);
    float c01 = lerp(c[4 * sb], c[4 * sb + 4], fr);
    float c11 = lerp(c[4 * (sb + sg)], c[4 * (sb + sg) + 4], fr);
    return lerp(lerp(c00, c10, fg), lerp(c01, c11, fg), fb);
}
#define GRID_INTERP(TYPE, MAXV)                                                                   \
    do {                                                                                          \
        for (int ch = 0; ch < 3; ch++) {                                                          \
            float x = w0 * tri1(q0 + ch, g->sg, g->sb, fr, fg, fb) + w1 * tri1(q1 + ch, g->sg, g->sb, fr, fg, fb) + \
                      w2 * tri1(q2 + ch, g->sg, g->sb, fr, fg, fb) + w3 * tri1(q3 + ch, g->sg, g->sb, fr, fg, fb); \
            x = x * (MAXV) + 0.5f;                                                                \
            d[ch] = x <= 0.0f ? 0 : (x >= (float)(MAXV) ? (TYPE)(MAXV) : (TYPE)x);               \
        }                                                                                         \
    } while (0)
#endif

/* The 4 cells' lattices for pixel column c of a row whose cell rows start at r0, r1 (floats). */
#define GRID_CELLS                                                                                \
    const float ly = g->yw[r], lx = g->xw[c];                                                     \
    const float w0 = (1.0f - ly) * (1.0f - lx), w1 = (1.0f - ly) * lx, w2 = ly * (1.0f - lx), w3 = ly * lx; \
    const Py_ssize_t x0 = g->xi[2 * c] * g->cell, x1 = g->xi[2 * c + 1] * g->cell;                 \
    const float *q0 = r0 + x0 + off, *q1 = r0 + x1 + off, *q2 = r1 + x0 + off, *q3 = r1 + x1 + off;

static void grid16(const uint16_t *s, uint16_t *dst, Py_ssize_t rows, Py_ssize_t width, const grid_t *g, int size) {
    const float scale = (float)(size - 1) / 65535.0f;
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float *r0 = g->t + (Py_ssize_t)g->yi[2 * r] * g->gw * g->cell;
        const float *r1 = g->t + (Py_ssize_t)g->yi[2 * r + 1] * g->gw * g->cell;
        for (Py_ssize_t c = 0; c < width; c++) {
            const Py_ssize_t k = r * width + c;
            float pr = s[3 * k] * scale, pg = s[3 * k + 1] * scale, pb = s[3 * k + 2] * scale;
            int ir = (int)pr, ig = (int)pg, ib = (int)pb;
            if (ir > size - 2) ir = size - 2;
            if (ig > size - 2) ig = size - 2;
            if (ib > size - 2) ib = size - 2;
            const float fr = pr - ir, fg = pg - ig, fb = pb - ib;
            const Py_ssize_t off = 4 * (ib * g->sb + ig * g->sg + ir);
            GRID_CELLS
            uint16_t *d = dst + 3 * k;
            GRID_INTERP(uint16_t, 65535);
        }
    }
}

static void grid8(const uint8_t *s, uint8_t *dst, Py_ssize_t rows, Py_ssize_t width, const grid_t *g, int size) {
    Py_ssize_t off_r[256], off_g[256], off_b[256];
    float frac[256];
    for (int v = 0; v < 256; v++) {
        float p = v * (float)(size - 1) / 255.0f;
        int i = (int)p;
        if (i > size - 2) i = size - 2;
        frac[v] = p - i;
        off_r[v] = (Py_ssize_t)i * 4;
        off_g[v] = (Py_ssize_t)i * g->sg * 4;
        off_b[v] = (Py_ssize_t)i * g->sb * 4;
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float *r0 = g->t + (Py_ssize_t)g->yi[2 * r] * g->gw * g->cell;
        const float *r1 = g->t + (Py_ssize_t)g->yi[2 * r + 1] * g->gw * g->cell;
        for (Py_ssize_t c = 0; c < width; c++) {
            const Py_ssize_t k = r * width + c;
            const uint8_t cr = s[3 * k], cg = s[3 * k + 1], cb = s[3 * k + 2];
            const float fr = frac[cr], fg = frac[cg], fb = frac[cb];
            const Py_ssize_t off = off_b[cb] + off_g[cg] + off_r[cr];
            GRID_CELLS
            uint8_t *d = dst + 3 * k;
            GRID_INTERP(uint8_t, 255);
        }
    }
}

static int taps_ok(const Py_buffer *idx, const Py_buffer *wt, Py_ssize_t n, int limit) {
    if (idx->len != 2 * n * (Py_ssize_t)sizeof(int32_t) || wt->len != n * (Py_ssize_t)sizeof(float)) return 0;
    const int32_t *p = (const int32_t *)idx->buf;
    for (Py_ssize_t i = 0; i < 2 * n; i++)
        if (p[i] < 0 || p[i] >= limit) return 0;
    return 1;
}

static PyObject *apply_grid(PyObject *self, PyObject *args) {
    Py_buffer src, dst, table, yi, yw, xi, xw;
    int gh, gw, size, bits;
    if (!PyArg_ParseTuple(args, "y*w*y*iiiiy*y*y*y*", &src, &dst, &table, &gh, &gw, &size, &bits, &yi, &yw, &xi, &xw))
        return NULL;
    const Py_ssize_t item = bits == 8 ? 1 : 2;
    const Py_ssize_t rows = yw.len / (Py_ssize_t)sizeof(float), width = xw.len / (Py_ssize_t)sizeof(float);
    PyObject *result = NULL;
    if ((bits != 8 && bits != 16) || size < 2 || gh < 1 || gw < 1 || src.len != dst.len ||
        src.len != rows * width * 3 * item ||
        table.len != (Py_ssize_t)gh * gw * size * size * size * 4 * (Py_ssize_t)sizeof(float) ||
        !taps_ok(&yi, &yw, rows, gh) || !taps_ok(&xi, &xw, width, gw)) {
        PyErr_SetString(PyExc_ValueError,
                        "apply_grid: buffer sizes do not match (src, dst: rows x width RGB of bits; table: gh x gw x size^3 x 4 "
                        "float32; row/column taps: 2 int32 indices inside the grid and 1 float32 weight each)");
    } else {
        grid_t g = {(const float *)table.buf, 4 * (Py_ssize_t)size * size * size, size, (Py_ssize_t)size * size, gw,
                    (const int32_t *)yi.buf, (const int32_t *)xi.buf, (const float *)yw.buf, (const float *)xw.buf};
        Py_BEGIN_ALLOW_THREADS
        if (bits == 8) grid8((const uint8_t *)src.buf, (uint8_t *)dst.buf, rows, width, &g, size);
        else grid16((const uint16_t *)src.buf, (uint16_t *)dst.buf, rows, width, &g, size);
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&table);
    PyBuffer_Release(&yi);
    PyBuffer_Release(&yw);
    PyBuffer_Release(&xi);
    PyBuffer_Release(&xw);
    return result;
}

static PyMethodDef methods[] = {
    {"apply", apply, METH_VARARGS,
     "apply(src, dst, table, size, bits): trilinear 3D LUT on interleaved RGB buffers; table is size^3 x 4 float32."},
    {"apply_grid", apply_grid, METH_VARARGS,
     "apply_grid(src, dst, tables, gh, gw, size, bits, yi, yw, xi, xw): a gh x gw grid of size^3 x 4 float32 lattices, "
     "blended per pixel with bilinear row/column taps (yi, xi: int32 index pairs; yw, xw: float32 weight of the second)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lut", NULL, -1, methods};

PyMODINIT_FUNC PyInit__lut(void) { return PyModule_Create(&module); }
