/* Trilinear 3D-LUT application for 8-bit, 16-bit and float32 RGB buffers, releasing the GIL.
 *
 * Written by hand because no maintained library does this well: Pillow's Color3DLUT is
 * 8-bit only, fixed point and single-threaded per call, and numpy's gathers take ~0.5 us a
 * pixel for 16-bit photos. This kernel reads interleaved RGB (uint8 or uint16), interpolates
 * a float32 table of size^3 nodes (red fastest, the .cube order, values may lie outside
 * [0, 1]) and writes the clipped, rounded result; Python splits the rows across threads.
 * float32 RGB (bits 32) reads colours clipped to [0, 1] and writes the unclipped result.
 * The interpolation is the same as csrnet.kernels.lut.apply_lut_array (tests compare them).
 *
 * The table comes padded to 4 floats a node (R, G, B, unused) so that with GCC/Clang each
 * corner is one 16-byte vector load and the three channels interpolate in one SIMD lane set:
 * faster than per-channel scalar code (bench/results/design_timings.md), same results. Other compilers
 * take the scalar loop.
 *
 * apply_grid does the same for a grid of lattices blended per pixel (CSRNet-L's fast path:
 * each pixel mixes its colour's value in the 4 nearest cells' lattices, bilinear weights).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- shared pieces: locating a colour in the lattice, trilinear lookup, clip-and-store ---- */

/* 8-bit: the 256 possible values' node offsets (in floats) and fractions, tabulated once per call. */
typedef struct {
    Py_ssize_t r[256], g[256], b[256];
    float frac[256];
} taps8_t;

static void taps8_init(taps8_t *tp, int size) {
    const Py_ssize_t sg = size, sb = (Py_ssize_t)size * size;
    for (int v = 0; v < 256; v++) {
        float p = v * (float)(size - 1) / 255.0f;
        int i = (int)p;
        if (i > size - 2) i = size - 2;
        tp->frac[v] = p - i;
        tp->r[v] = (Py_ssize_t)i * 4;
        tp->g[v] = (Py_ssize_t)i * sg * 4;
        tp->b[v] = (Py_ssize_t)i * sb * 4;
    }
}

/* Offset (in floats) of the lower corner of the cell holding RGB pixel p, and its fractions. */
static inline Py_ssize_t locate8(const taps8_t *tp, const uint8_t *p, float *fr, float *fg, float *fb) {
    *fr = tp->frac[p[0]];
    *fg = tp->frac[p[1]];
    *fb = tp->frac[p[2]];
    return tp->r[p[0]] + tp->g[p[1]] + tp->b[p[2]];
}

/* Lattice coordinates (pr, pg, pb) in [0, size-1] -> offset of the cell's lower corner and fractions. */
static inline Py_ssize_t cell_at(float pr, float pg, float pb, int size, float *fr, float *fg, float *fb) {
    int ir = (int)pr, ig = (int)pg, ib = (int)pb;
    if (ir > size - 2) ir = size - 2;
    if (ig > size - 2) ig = size - 2;
    if (ib > size - 2) ib = size - 2;
    *fr = pr - ir;
    *fg = pg - ig;
    *fb = pb - ib;
    return 4 * (((Py_ssize_t)ib * size + ig) * size + ir);
}

static inline Py_ssize_t locate16(const uint16_t *p, int size, float *fr, float *fg, float *fb) {
    const float scale = (float)(size - 1) / 65535.0f;
    return cell_at(p[0] * scale, p[1] * scale, p[2] * scale, size, fr, fg, fb);
}

/* float32: clipped to [0, 1] first (NaN counts as 0, so no index leaves the table). */
static inline float clip01(float v) { return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; }

static inline Py_ssize_t locatef(const float *p, int size, float *fr, float *fg, float *fb) {
    const float scale = (float)(size - 1);
    return cell_at(clip01(p[0]) * scale, clip01(p[1]) * scale, clip01(p[2]) * scale, size, fr, fg, fb);
}

#define STORE1(TYPE, MAXV, X) d[ch] = (X) <= 0.0f ? 0 : ((X) >= (float)(MAXV) ? (TYPE)(MAXV) : (TYPE)(X))

#if (defined(__GNUC__) || defined(__clang__)) && !defined(CSR_SCALAR)
#define CSR_VECTOR 1
/* aligned(4): numpy only promises float alignment for the table. */
typedef float v4f __attribute__((vector_size(16), aligned(4)));

/* Trilinear value at the cell whose lower corner is c (strides sg, sb in nodes), all channels at once. */
static inline v4f tri4(const float *c, Py_ssize_t sg, Py_ssize_t sb, float fr, float fg, float fb) {
    const v4f *v = (const v4f *)c;
    v4f c00 = v[0] + fr * (v[1] - v[0]);
    v4f c10 = v[sg] + fr * (v[sg + 1] - v[sg]);
    v4f c01 = v[sb] + fr * (v[sb + 1] - v[sb]);
    v4f c11 = v[sb + sg] + fr * (v[sb + sg + 1] - v[sb + sg]);
    v4f c0 = c00 + fg * (c10 - c00), c1 = c01 + fg * (c11 - c01);
    return c0 + fb * (c1 - c0);
}
/* AT(q): the lattice value at a cell corner q; BLEND stores EXPR (a sum of AT terms) into d[0..2]. */
#define AT(q) tri4((q), sg, sb, fr, fg, fb)
#define BLEND(TYPE, MAXV, EXPR)                                                                   \
    do {                                                                                          \
        v4f res_ = (EXPR) * (float)(MAXV) + 0.5f;                                                 \
        for (int ch = 0; ch < 3; ch++) STORE1(TYPE, MAXV, res_[ch]);                             \
    } while (0)
#else
static inline float lerp(float a, float b, float t) { return a + t * (b - a); }
static inline float tri1(const float *c, Py_ssize_t sg, Py_ssize_t sb, float fr, float fg, float fb) {
    float c00 = lerp(c[0], c[4], fr);
    float c10 = lerp(c[4 * sg], c[4 * sg + 4], fr);
    float c01 = lerp(c[4 * sb], c[4 * sb + 4], fr);
    float c11 = lerp(c[4 * (sb + sg)], c[4 * (sb + sg) + 4], fr);
    return lerp(lerp(c00, c10, fg), lerp(c01, c11, fg), fb);
}
#define AT(q) tri1((q) + ch, sg, sb, fr, fg, fb)
#define BLEND(TYPE, MAXV, EXPR)                                                                   \
    do {                                                                                          \
        for (int ch = 0; ch < 3; ch++) {                                                          \
            float x_ = (EXPR) * (MAXV) + 0.5f;                                                    \
            STORE1(TYPE, MAXV, x_);                                                               \
        }                                                                                         \
    } while (0)
#endif

/* CLONES: where the toolchain can (GCC 12+, x86-64 Linux), each pixel loop is also compiled for
 * x86-64-v3 (AVX2 + FMA) and picked at load time by the CPU; others run the baseline build.
 * The corner lerps become FMAs (timings: bench/results/design_timings.md). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && defined(__linux__) && !defined(CSR_NO_CLONES)
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

/* ---- one lattice ---- */
CLONES static void run16(const uint16_t *s, uint16_t *dst, Py_ssize_t n, const float *t, int size) {
    const Py_ssize_t sg = size, sb = (Py_ssize_t)size * size;
    for (Py_ssize_t k = 0; k < n; k++) {
        float fr, fg, fb;
        const float *c = t + locate16(s + 3 * k, size, &fr, &fg, &fb);
        uint16_t *d = dst + 3 * k;
        BLEND(uint16_t, 65535, AT(c));
    }
}

CLONES static void runf(const float *s, float *dst, Py_ssize_t n, const float *t, int size) {
    const Py_ssize_t sg = size, sb = (Py_ssize_t)size * size;
    for (Py_ssize_t k = 0; k < n; k++) {
        float fr, fg, fb;
        const float *c = t + locatef(s + 3 * k, size, &fr, &fg, &fb);
        float *d = dst + 3 * k;
#ifdef CSR_VECTOR
        v4f res = AT(c);
        for (int ch = 0; ch < 3; ch++) d[ch] = res[ch];
#else
        for (int ch = 0; ch < 3; ch++) d[ch] = AT(c);
#endif
    }
}

CLONES static void run8(const uint8_t *s, uint8_t *dst, Py_ssize_t n, const float *t, int size) {
    const Py_ssize_t sg = size, sb = (Py_ssize_t)size * size;
    taps8_t tp;
    taps8_init(&tp, size);
    for (Py_ssize_t k = 0; k < n; k++) {
        float fr, fg, fb;
        const float *c = t + locate8(&tp, s + 3 * k, &fr, &fg, &fb);
        uint8_t *d = dst + 3 * k;
        BLEND(uint8_t, 255, AT(c));
    }
}

static PyObject *apply(PyObject *self, PyObject *args) {
    Py_buffer src, dst, table;
    int size, bits;
    if (!PyArg_ParseTuple(args, "y*w*y*ii", &src, &dst, &table, &size, &bits)) return NULL;
    const Py_ssize_t item = bits / 8;
    PyObject *result = NULL;
    if ((bits != 8 && bits != 16 && bits != 32) || size < 2 || src.len != dst.len || src.len % (3 * item) != 0 ||
        table.len != (Py_ssize_t)size * size * size * 4 * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "apply: buffer sizes do not match (src, dst: RGB of bits 8, 16 or 32 (float32); table: size^3 x 4 float32)");
    } else {
        Py_ssize_t n = src.len / (3 * item);
        Py_BEGIN_ALLOW_THREADS
        if (bits == 8) run8((const uint8_t *)src.buf, (uint8_t *)dst.buf, n, (const float *)table.buf, size);
        else if (bits == 32) runf((const float *)src.buf, (float *)dst.buf, n, (const float *)table.buf, size);
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

/* ---- a grid of lattices blended per pixel (CSRNet-L's fast path, csrnet.arch.csrnet_l) ----
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

/* The 4 cells' lattices around pixel (r, c) with their bilinear weights; off locates the colour. */
#define GRID_CELLS                                                                                \
    const float ly = g->yw[r], lx = g->xw[c];                                                     \
    const float w0 = (1.0f - ly) * (1.0f - lx), w1 = (1.0f - ly) * lx, w2 = ly * (1.0f - lx), w3 = ly * lx; \
    const Py_ssize_t x0 = g->xi[2 * c] * g->cell, x1 = g->xi[2 * c + 1] * g->cell;                 \
    const float *q0 = r0 + x0 + off, *q1 = r0 + x1 + off, *q2 = r1 + x0 + off, *q3 = r1 + x1 + off;
#define GRID_SUM (w0 * AT(q0) + w1 * AT(q1) + w2 * AT(q2) + w3 * AT(q3))
/* Cell-row starts of output row r. */
#define GRID_ROW                                                                                  \
    const float *r0 = g->t + (Py_ssize_t)g->yi[2 * r] * g->gw * g->cell;                          \
    const float *r1 = g->t + (Py_ssize_t)g->yi[2 * r + 1] * g->gw * g->cell;

CLONES static void grid16(const uint16_t *s, uint16_t *dst, Py_ssize_t rows, Py_ssize_t width, const grid_t *g, int size) {
    const Py_ssize_t sg = g->sg, sb = g->sb;
    for (Py_ssize_t r = 0; r < rows; r++) {
        GRID_ROW
        for (Py_ssize_t c = 0; c < width; c++) {
            const Py_ssize_t k = r * width + c;
            float fr, fg, fb;
            const Py_ssize_t off = locate16(s + 3 * k, size, &fr, &fg, &fb);
            GRID_CELLS
            uint16_t *d = dst + 3 * k;
            BLEND(uint16_t, 65535, GRID_SUM);
        }
    }
}

CLONES static void grid8(const uint8_t *s, uint8_t *dst, Py_ssize_t rows, Py_ssize_t width, const grid_t *g, int size) {
    const Py_ssize_t sg = g->sg, sb = g->sb;
    taps8_t tp;
    taps8_init(&tp, size);
    for (Py_ssize_t r = 0; r < rows; r++) {
        GRID_ROW
        for (Py_ssize_t c = 0; c < width; c++) {
            const Py_ssize_t k = r * width + c;
            float fr, fg, fb;
            const Py_ssize_t off = locate8(&tp, s + 3 * k, &fr, &fg, &fb);
            GRID_CELLS
            uint8_t *d = dst + 3 * k;
            BLEND(uint8_t, 255, GRID_SUM);
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

/* ---- box means for the condition network's small copy (csrnet.kernels.resize.downscale) ----
 * Pillow's Image.reduce works on 8-bit RGB only after a copy to 4 bytes a pixel, in one thread,
 * and not at all on 16-bit RGB; this reads interleaved uint8/uint16 RGB as it is and writes the
 * means of fy x fx boxes (partial boxes at the right and bottom edges, as Pillow's reduce) as
 * float32 planes (3, ho, wo) scaled to [0, 1], for output rows [r0, r1) so Python can split rows
 * across threads. Integer sums are exact. */
/* BOX_ROWS: box rows OY0..OY1 of the reduced image (wr columns); ROWPTRS declares the row's three
 * plane pointers d0, d1, d2, AFTER runs once each row is done. */
#define BOX_ROWS(TYPE, OY0, OY1, ROWPTRS, AFTER)                                                  \
    do {                                                                                          \
        const TYPE *px = (const TYPE *)src;                                                       \
        const Py_ssize_t n = w * 3;                                                               \
        for (Py_ssize_t oy = (OY0); oy < (OY1); oy++) {                                           \
            const Py_ssize_t y0 = oy * fy, y1 = y0 + fy < h ? y0 + fy : h;                        \
            /* column sums over the box's rows: a plain widening add the compiler vectorises */   \
            memset(acc, 0, (size_t)n * sizeof(uint32_t));                                        \
            for (Py_ssize_t y = y0; y < y1; y++) {                                                \
                const TYPE *row = px + y * n;                                                     \
                for (Py_ssize_t i = 0; i < n; i++) acc[i] += row[i];                              \
            }                                                                                     \
            const float kf = (float)(1.0 / ((double)(y1 - y0) * (double)fx * maxv)); /* full boxes */     \
            ROWPTRS;                                                                              \
            Py_ssize_t ox = 0;                                                                    \
            if (fx == 2) /* the common 6-12 MP case: a fixed trip count the compiler unrolls */   \
                for (; ox < w / 2; ox++) {                                                        \
                    const uint32_t *q = acc + 6 * ox;                                             \
                    d0[ox] = (float)(q[0] + q[3]) * kf;                                           \
                    d1[ox] = (float)(q[1] + q[4]) * kf;                                           \
                    d2[ox] = (float)(q[2] + q[5]) * kf;                                           \
                }                                                                                 \
            for (; ox < wr; ox++) {                                                               \
                const Py_ssize_t x0 = ox * fx, x1 = x0 + fx < w ? x0 + fx : w;                    \
                uint32_t a0 = 0, a1 = 0, a2 = 0;                                                  \
                for (Py_ssize_t x = x0; x < x1; x++) {                                            \
                    a0 += acc[3 * x];                                                             \
                    a1 += acc[3 * x + 1];                                                         \
                    a2 += acc[3 * x + 2];                                                         \
                }                                                                                 \
                const float k = x1 - x0 == fx ? kf : (float)(1.0 / ((double)(y1 - y0) * (double)(x1 - x0) * maxv)); \
                d0[ox] = (float)a0 * k;                                                           \
                d1[ox] = (float)a1 * k;                                                           \
                d2[ox] = (float)a2 * k;                                                           \
            }                                                                                     \
            AFTER;                                                                                \
        }                                                                                         \
    } while (0)

static PyObject *box_reduce(PyObject *self, PyObject *args) {
    Py_buffer sbuf, dbuf;
    Py_ssize_t h, w, fx, fy, r0, r1;
    int bits;
    if (!PyArg_ParseTuple(args, "y*w*nnnnnni", &sbuf, &dbuf, &h, &w, &fx, &fy, &r0, &r1, &bits)) return NULL;
    PyObject *result = NULL;
    const Py_ssize_t item = bits / 8;
    const Py_ssize_t ho = fy > 0 ? (h + fy - 1) / fy : 0, wo = fx > 0 ? (w + fx - 1) / fx : 0;
    /* uint32 sums: at most 65535 * fx * fy must fit */
    if ((bits != 8 && bits != 16) || h < 1 || w < 1 || fx < 1 || fy < 1 || fx * fy > 65536 || r0 < 0 || r1 > ho || r0 > r1 ||
        sbuf.len != h * w * 3 * item || dbuf.len != 3 * ho * wo * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "box_reduce: buffer sizes do not match (src: h x w RGB of bits 8 or 16; "
                                          "dst: 3 x ceil(h/fy) x ceil(w/fx) float32; rows inside it)");
    } else {
        uint32_t *acc = (uint32_t *)PyMem_RawMalloc((size_t)w * 3 * sizeof(uint32_t));
        if (acc == NULL) {
            PyErr_NoMemory();
        } else {
            const void *src = sbuf.buf;
            float *dst = (float *)dbuf.buf;
            const double maxv = bits == 8 ? 255.0 : 65535.0;
            const Py_ssize_t wr = wo;
#define BOX_DST float *d0 = dst + oy * wo, *d1 = dst + (ho + oy) * wo, *d2 = dst + (2 * ho + oy) * wo
            Py_BEGIN_ALLOW_THREADS
            if (bits == 8) BOX_ROWS(uint8_t, r0, r1, BOX_DST, (void)0);
            else BOX_ROWS(uint16_t, r0, r1, BOX_DST, (void)0);
            Py_END_ALLOW_THREADS
#undef BOX_DST
            PyMem_RawFree(acc);
            result = Py_None;
            Py_INCREF(result);
        }
    }
    PyBuffer_Release(&sbuf);
    PyBuffer_Release(&dbuf);
    return result;
}

/* ---- Pillow's bilinear resample of float32 planes ----
 * The second step of the condition copy (after box_reduce): Pillow's two-pass ImagingResample on
 * "F" images — a horizontal pass into float32 rows, then a vertical pass, each output a double sum
 * of its taps in order — on output rows r0..r1 of all three planes, so that Python can split rows
 * across threads (Pillow's resize is single-threaded and each plane also needs an Image copy). The taps (first index and count per output, weights padded to
 * kh / kv) come from csrnet.kernels.lut._bilinear_taps, which computes them as Pillow's precompute_coeffs. */
/* One row of the horizontal pass with N taps per output (in order, as Pillow sums them). */
#define HTAPS(N)                                                                                  \
    for (Py_ssize_t xx = 0; xx < wo; xx++) {                                                      \
        const float *p = row + hb[2 * xx];                                                        \
        const double *k = hk + xx * kh;                                                           \
        double ss = 0.0;                                                                          \
        for (int32_t x = 0; x < (N); x++) ss += p[x] * k[x];                                      \
        t[xx] = (float)ss;                                                                        \
    }

static PyObject *resample(PyObject *self, PyObject *args) {
    Py_buffer sbuf, dbuf, hbb, hkb, vbb, vkb;
    Py_ssize_t h, w, ho, wo, kh, kv, r0, r1;
    if (!PyArg_ParseTuple(args, "y*w*nnnny*y*ny*y*nnn", &sbuf, &dbuf, &h, &w, &ho, &wo, &hbb, &hkb, &kh, &vbb, &vkb, &kv, &r0, &r1))
        return NULL;
    PyObject *result = NULL;
    const int32_t *hb = (const int32_t *)hbb.buf, *vb = (const int32_t *)vbb.buf;
    int ok = h > 0 && w > 0 && ho > 0 && wo > 0 && kh > 0 && kv > 0 && 0 <= r0 && r0 < r1 && r1 <= ho &&
             sbuf.len == 3 * h * w * (Py_ssize_t)sizeof(float) && dbuf.len == 3 * ho * wo * (Py_ssize_t)sizeof(float) &&
             hbb.len == 2 * wo * (Py_ssize_t)sizeof(int32_t) && hkb.len == wo * kh * (Py_ssize_t)sizeof(double) &&
             vbb.len == 2 * ho * (Py_ssize_t)sizeof(int32_t) && vkb.len == ho * kv * (Py_ssize_t)sizeof(double);
    for (Py_ssize_t i = 0; ok && i < wo; i++) ok = hb[2 * i] >= 0 && hb[2 * i + 1] >= 0 && hb[2 * i + 1] <= kh && hb[2 * i] + hb[2 * i + 1] <= w;
    for (Py_ssize_t i = 0; ok && i < ho; i++) ok = vb[2 * i] >= 0 && vb[2 * i + 1] >= 0 && vb[2 * i + 1] <= kv && vb[2 * i] + vb[2 * i + 1] <= h;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "resample: buffer sizes or taps do not match (src 3 x h x w float32, dst 3 x ho x wo, "
                                          "taps inside the source, rows 0 <= r0 < r1 <= ho)");
    } else {
        /* input rows the output rows need (the taps' first rows only grow with the output row) */
        Py_ssize_t yf = vb[2 * r0], yl = yf;
        for (Py_ssize_t r = r0; r < r1; r++)
            if (vb[2 * r] + vb[2 * r + 1] > yl) yl = vb[2 * r] + vb[2 * r + 1];
        if (yl == yf) yl = yf + 1;
        float *tmp = (float *)PyMem_RawMalloc((size_t)(yl - yf) * wo * sizeof(float));
        double *acc = (double *)PyMem_RawMalloc((size_t)wo * sizeof(double));
        if (tmp == NULL || acc == NULL) {
            PyErr_NoMemory();
        } else {
            const float *src = (const float *)sbuf.buf;
            float *dst = (float *)dbuf.buf;
            const double *hk = (const double *)hkb.buf, *vk = (const double *)vkb.buf;
            int fixed = (int)kh;
            for (Py_ssize_t i = 0; i < wo; i++)
                if (hb[2 * i + 1] != kh) fixed = 0;
            Py_BEGIN_ALLOW_THREADS
            for (int c = 0; c < 3; c++) {
                for (Py_ssize_t y = yf; y < yl; y++) {
                    const float *row = src + ((Py_ssize_t)c * h + y) * w;
                    float *t = tmp + (y - yf) * wo;
                    switch (fixed) { /* constant trip counts the compiler unrolls (taps padded to kh by the caller) */
                    case 5: HTAPS(5); break;
                    case 7: HTAPS(7); break;
                    case 9: HTAPS(9); break;
                    case 13: HTAPS(13); break;
                    default: HTAPS(hb[2 * xx + 1]); break;
                    }
                }
                for (Py_ssize_t yy = r0; yy < r1; yy++) {
                    const double *k = vk + yy * kv;
                    const float *t0 = tmp + (vb[2 * yy] - yf) * wo;
                    for (Py_ssize_t xx = 0; xx < wo; xx++) acc[xx] = 0.0;
                    for (int32_t y = 0; y < vb[2 * yy + 1]; y++) /* the same order of terms as Pillow's per-pixel sum */
                        for (Py_ssize_t xx = 0; xx < wo; xx++) acc[xx] += t0[y * wo + xx] * k[y];
                    float *d = dst + ((Py_ssize_t)c * ho + yy) * wo;
                    for (Py_ssize_t xx = 0; xx < wo; xx++) d[xx] = (float)acc[xx];
                }
            }
            Py_END_ALLOW_THREADS
            result = Py_None;
            Py_INCREF(result);
        }
        PyMem_RawFree(tmp);
        PyMem_RawFree(acc);
    }
    PyBuffer_Release(&sbuf);
    PyBuffer_Release(&dbuf);
    PyBuffer_Release(&hbb);
    PyBuffer_Release(&hkb);
    PyBuffer_Release(&vbb);
    PyBuffer_Release(&vkb);
    return result;
}

/* ---- the whole condition copy in one pass: box means, then Pillow's bilinear resample ----
 * box_reduce followed by resample, fused row by row: each box row is reduced into a small buffer
 * and resampled horizontally at once, so the box means (36 MB of float planes for a 6 MP photo)
 * are never written out and read back. The same float32 box means and the same double sums in
 * the same order as the two-step path, so the result is identical to it. */
static PyObject *downscale_rgb(PyObject *self, PyObject *args) {
    Py_buffer sbuf, dbuf, hbb, hkb, vbb, vkb;
    Py_ssize_t h, w, fx, fy, ho, wo, kh, kv, r0, r1;
    int bits;
    if (!PyArg_ParseTuple(args, "y*w*nnnnnny*y*ny*y*nnni", &sbuf, &dbuf, &h, &w, &fx, &fy, &ho, &wo, &hbb, &hkb, &kh, &vbb, &vkb,
                          &kv, &r0, &r1, &bits))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t item = bits / 8;
    const Py_ssize_t hr = fy > 0 ? (h + fy - 1) / fy : 0, wr = fx > 0 ? (w + fx - 1) / fx : 0;
    const int32_t *hb = (const int32_t *)hbb.buf, *vb = (const int32_t *)vbb.buf;
    int ok = (bits == 8 || bits == 16) && h > 0 && w > 0 && fx > 0 && fy > 0 && fx * fy <= 65536 && ho > 0 && wo > 0 && kh > 0 &&
             kv > 0 && 0 <= r0 && r0 < r1 && r1 <= ho && sbuf.len == h * w * 3 * item &&
             dbuf.len == 3 * ho * wo * (Py_ssize_t)sizeof(float) && hbb.len == 2 * wo * (Py_ssize_t)sizeof(int32_t) &&
             hkb.len == wo * kh * (Py_ssize_t)sizeof(double) && vbb.len == 2 * ho * (Py_ssize_t)sizeof(int32_t) &&
             vkb.len == ho * kv * (Py_ssize_t)sizeof(double);
    for (Py_ssize_t i = 0; ok && i < wo; i++) ok = hb[2 * i] >= 0 && hb[2 * i + 1] >= 0 && hb[2 * i + 1] <= kh && hb[2 * i] + hb[2 * i + 1] <= wr;
    for (Py_ssize_t i = 0; ok && i < ho; i++) ok = vb[2 * i] >= 0 && vb[2 * i + 1] >= 0 && vb[2 * i + 1] <= kv && vb[2 * i] + vb[2 * i + 1] <= hr;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "downscale_rgb: buffer sizes or taps do not match (src h x w RGB of bits 8 or 16, "
                                          "dst 3 x ho x wo float32, taps inside the box-reduced image, 0 <= r0 < r1 <= ho)");
    } else {
        Py_ssize_t yf = vb[2 * r0], yl = yf;
        for (Py_ssize_t r = r0; r < r1; r++)
            if (vb[2 * r] + vb[2 * r + 1] > yl) yl = vb[2 * r] + vb[2 * r + 1];
        if (yl == yf) yl = yf + 1;
        const Py_ssize_t nrows = yl - yf;
        float *tmp = (float *)PyMem_RawMalloc((size_t)(3 * nrows * wo) * sizeof(float));
        float *prow = (float *)PyMem_RawMalloc((size_t)(3 * wr) * sizeof(float));
        uint32_t *acc = (uint32_t *)PyMem_RawMalloc((size_t)w * 3 * sizeof(uint32_t));
        double *vacc = (double *)PyMem_RawMalloc((size_t)wo * sizeof(double));
        if (tmp == NULL || prow == NULL || acc == NULL || vacc == NULL) {
            PyErr_NoMemory();
        } else {
            const void *src = sbuf.buf;
            float *dst = (float *)dbuf.buf;
            const double *hk = (const double *)hkb.buf, *vk = (const double *)vkb.buf;
            const double maxv = bits == 8 ? 255.0 : 65535.0;
            int fixed = (int)kh;
            for (Py_ssize_t i = 0; i < wo; i++)
                if (hb[2 * i + 1] != kh) fixed = 0;
#define FUSED_DST float *d0 = prow, *d1 = prow + wr, *d2 = prow + 2 * wr
#define FUSED_AFTER                                                                               \
    for (int c = 0; c < 3; c++) {                                                                 \
        const float *row = prow + c * wr;                                                         \
        float *t = tmp + (c * nrows + (oy - yf)) * wo;                                            \
        switch (fixed) {                                                                          \
        case 5: HTAPS(5); break;                                                                  \
        case 7: HTAPS(7); break;                                                                  \
        case 9: HTAPS(9); break;                                                                  \
        case 13: HTAPS(13); break;                                                                \
        default: HTAPS(hb[2 * xx + 1]); break;                                                    \
        }                                                                                         \
    }
            Py_BEGIN_ALLOW_THREADS
            if (bits == 8) BOX_ROWS(uint8_t, yf, yl, FUSED_DST, FUSED_AFTER);
            else BOX_ROWS(uint16_t, yf, yl, FUSED_DST, FUSED_AFTER);
            for (int c = 0; c < 3; c++) {
                for (Py_ssize_t yy = r0; yy < r1; yy++) {
                    const double *k = vk + yy * kv;
                    const float *t0 = tmp + (c * nrows + (vb[2 * yy] - yf)) * wo;
                    for (Py_ssize_t xx = 0; xx < wo; xx++) vacc[xx] = 0.0;
                    for (int32_t y = 0; y < vb[2 * yy + 1]; y++)
                        for (Py_ssize_t xx = 0; xx < wo; xx++) vacc[xx] += t0[y * wo + xx] * k[y];
                    float *d = dst + ((Py_ssize_t)c * ho + yy) * wo;
                    for (Py_ssize_t xx = 0; xx < wo; xx++) d[xx] = (float)vacc[xx];
                }
            }
            Py_END_ALLOW_THREADS
#undef FUSED_DST
#undef FUSED_AFTER
            result = Py_None;
            Py_INCREF(result);
        }
        PyMem_RawFree(tmp);
        PyMem_RawFree(prow);
        PyMem_RawFree(acc);
        PyMem_RawFree(vacc);
    }
    PyBuffer_Release(&sbuf);
    PyBuffer_Release(&dbuf);
    PyBuffer_Release(&hbb);
    PyBuffer_Release(&hkb);
    PyBuffer_Release(&vbb);
    PyBuffer_Release(&vkb);
    return result;
}

static PyMethodDef methods[] = {
    {"apply", apply, METH_VARARGS,
     "apply(src, dst, table, size, bits): trilinear 3D LUT on interleaved RGB buffers (bits 8, 16, or 32 = float32, "
     "unclipped out); table is size^3 x 4 float32."},
    {"apply_grid", apply_grid, METH_VARARGS,
     "apply_grid(src, dst, tables, gh, gw, size, bits, yi, yw, xi, xw): a gh x gw grid of size^3 x 4 float32 lattices, "
     "blended per pixel with bilinear row/column taps (yi, xi: int32 index pairs; yw, xw: float32 weight of the second)."},
    {"box_reduce", box_reduce, METH_VARARGS,
     "box_reduce(src, dst, h, w, fx, fy, r0, r1, bits): means of fy x fx boxes of h x w interleaved RGB (bits 8 or 16), "
     "output rows r0..r1 of dst, float32 planes (3, ceil(h/fy), ceil(w/fx)) in [0, 1]."},
    {"downscale_rgb", downscale_rgb, METH_VARARGS,
     "downscale_rgb(src, dst, h, w, fx, fy, ho, wo, hb, hk, kh, vb, vk, kv, r0, r1, bits): box_reduce then resample "
     "in one pass, output rows r0..r1 of dst (3, ho, wo) float32; taps index the box-reduced image."},
    {"resample", resample, METH_VARARGS,
     "resample(src, dst, h, w, ho, wo, hb, hk, kh, vb, vk, kv, r0, r1): Pillow's two-pass resample of 3 float32 planes "
     "h x w to ho x wo, output rows r0..r1; hb/vb int32 (first, count) per output, hk/vk float64 weights padded to kh/kv."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lut", NULL, -1, methods};

PyMODINIT_FUNC PyInit__lut(void) { return PyModule_Create(&module); }
