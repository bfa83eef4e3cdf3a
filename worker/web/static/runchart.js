/* The run page's charts (this project's own; uPlot draws them).

   Each metric's history comes from /api/metrics/history, downsampled on the server to
   about one bucket per two pixels of the chart: a line per run (each bucket's last value,
   or its mean) over the band of its min and max. Dragging across a chart, or the step
   range form, asks the server for that range, as finely as the chart can show; a
   double-click or "Whole run" goes back. Other runs of the experiment are overlaid from
   the checkboxes. Text from the server is only ever set as textContent (uPlot sets its
   labels the same way). */
"use strict";
(() => {
  const COLORS = ["#1b5fa8", "#c2410c", "#217a3c", "#7c3aed", "#b3261e", "#0e7490", "#a16207", "#be185d"];
  const HEIGHT = 260;
  const BUSY_ATTEMPTS = 4;
  const STEPS = /^\d+$/;
  const config = JSON.parse(document.getElementById("chart-config").textContent);
  const controls = document.getElementById("chart-controls");
  const chosen = () => [...controls.querySelectorAll("input[name=compare]:checked")].map((box) => Number(box.value));
  const view = { runIds: [config.run_id, ...chosen()], line: controls.elements.line.value };
  const number = new Intl.NumberFormat("en", { maximumSignificantDigits: 6 });
  const count = new Intl.NumberFormat("en");

  function color(index, alpha) {
    const hex = COLORS[index % COLORS.length];
    const [r, g, b] = [1, 3, 5].map((at) => Number.parseInt(hex.slice(at, at + 2), 16));
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }

  /* The buckets of every run on one x axis: the server cuts the same step spans for all
     runs, so a bucket's index (from its first step) lines runs up; it is drawn at the last
     step any run has in it (for one run, the step of the bucket's last value). */
  function aligned(history, line) {
    const { first_step: lo, last_step: hi, buckets: n } = history;
    const at = new Map();
    const indexed = history.series.map((series) =>
      series.buckets.map((bucket) => {
        const index = Math.floor(((bucket.first_step - lo) * n) / (hi - lo + 1));
        at.set(index, Math.max(at.get(index) ?? -1, bucket.last_step));
        return [index, bucket];
      }),
    );
    const order = [...at.keys()].sort((p, q) => p - q);
    const row = new Map(order.map((index, k) => [index, k]));
    const columns = [order.map((index) => at.get(index))];
    for (const buckets of indexed) {
      const [value, low, high] = [0, 1, 2].map(() => new Array(order.length).fill(null));
      for (const [index, bucket] of buckets) {
        const k = row.get(index);
        [value[k], low[k], high[k]] = [bucket[line], bucket.min, bucket.max];
      }
      columns.push(value, low, high);
    }
    return columns;
  }

  class MetricChart {
    constructor(section) {
      this.section = section;
      this.name = section.dataset.metric;
      this.box = section.querySelector(".plot");
      this.form = section.querySelector("form.range");
      this.status = section.querySelector(".status");
      this.range = null; // the steps asked for, or null: the whole run
      this.history = null;
      this.plot = null;
      this.drawn = "";
      this.reading = null;
      this.form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.zoom(this.form.elements.first_step.value.trim(), this.form.elements.last_step.value.trim());
      });
      this.form.elements.reset.addEventListener("click", () => this.reset());
    }

    width() {
      return Math.max(240, this.box.clientWidth);
    }

    /* About one bucket per two pixels, within what one read may return for all the runs. */
    url() {
      const shared = Math.floor(config.max_total / view.runIds.length);
      const buckets = Math.max(1, Math.min(config.max_buckets, shared, Math.max(20, Math.floor(this.width() / 2))));
      const query = new URLSearchParams({ name: this.name, buckets: String(buckets) });
      for (const id of view.runIds) query.append("run_ids", String(id));
      if (this.range) {
        query.set("first_step", String(this.range.first));
        query.set("last_step", String(this.range.last));
      }
      return `/api/metrics/history?${query}`;
    }

    async load() {
      this.reading?.abort();
      const reading = (this.reading = new AbortController());
      this.section.dataset.state = "loading";
      try {
        const response = await this.fetched(reading.signal);
        const body = await response.json();
        if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
        this.history = body;
        this.draw();
        this.section.dataset.state = "drawn";
      } catch (error) {
        if (reading.signal.aborted) return;
        this.section.dataset.state = "error";
        this.status.textContent = `could not read the history: ${error.message}`;
      }
    }

    /* A console busy with other heavy reads answers 503 with Retry-After: wait, ask again. */
    async fetched(signal) {
      for (let attempt = 1; ; attempt += 1) {
        const response = await fetch(this.url(), { signal });
        if (response.status !== 503 || attempt === BUSY_ATTEMPTS) return response;
        const seconds = Number(response.headers.get("Retry-After")) || 2;
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        if (signal.aborted) throw new DOMException("aborted", "AbortError");
      }
    }

    zoom(first, last) {
      if (!STEPS.test(first) || !STEPS.test(last) || Number(first) > Number(last)) {
        this.status.textContent = "steps: two whole numbers, the first not above the second";
        return;
      }
      this.range = { first: Number(first), last: Number(last) };
      this.load();
    }

    reset() {
      this.range = null;
      this.load();
    }

    draw() {
      const history = this.history;
      const runs = history.series.map((series) => series.run_id);
      const data = history.first_step === null ? [[], ...runs.flatMap(() => [[], [], []])] : aligned(history, view.line);
      if (this.drawn !== runs.join(",")) {
        this.plot?.destroy();
        this.plot = this.create(runs, data);
        this.drawn = runs.join(",");
      } else {
        this.plot.setData(data);
      }
      const { first_step: first, last_step: last } = history;
      this.form.elements.first_step.value = first ?? this.range?.first ?? "";
      this.form.elements.last_step.value = last ?? this.range?.last ?? "";
      Object.assign(this.section.dataset, { series: String(runs.length), first: first ?? "", last: last ?? "" });
      this.status.textContent = this.caption();
    }

    caption() {
      const { first_step: first, last_step: last, buckets, series } = this.history;
      if (first === null) return this.range ? `no point in steps ${this.range.first}–${this.range.last}` : "no point";
      const span = Math.ceil((last - first + 1) / buckets);
      const points = series.map((s) => `run ${s.run_id}: ${count.format(s.buckets.reduce((sum, b) => sum + b.points, 0))}`);
      return `steps ${first}–${last}, buckets of up to ${count.format(span)} step${span > 1 ? "s" : ""}; points ${points.join(", ")}`;
    }

    create(runs, data) {
      const series = [{ label: "step", value: (u, step) => (step == null ? "–" : String(step)) }];
      const bands = [];
      const value = (u, v) => (v == null ? "–" : number.format(v));
      runs.forEach((runId, k) => {
        const line = series.length;
        const band = { class: "band", stroke: color(k, 0.2), width: 0, spanGaps: true, points: { show: false }, value };
        series.push({ label: `run ${runId}`, stroke: color(k, 1), width: 1.5, spanGaps: true, value });
        series.push({ ...band, label: `run ${runId} min` }, { ...band, label: `run ${runId} max` });
        bands.push({ series: [line + 2, line + 1], fill: color(k, 0.16) });
      });
      const options = {
        width: this.width(),
        height: HEIGHT,
        series,
        bands,
        scales: { x: { time: false } },
        axes: [{ label: "step" }, { size: 64 }],
        cursor: { drag: { x: true, y: false, setScale: false } },
        hooks: {
          setSelect: [(u) => this.selected(u)],
          setSeries: [(u, index) => this.alongside(u, index)],
        },
      };
      const plot = new uPlot(options, data, this.box);
      plot.over.addEventListener("dblclick", () => this.reset());
      return plot;
    }

    /* A drag across the chart: its steps, read again from the server. */
    selected(u) {
      const { left, width } = u.select;
      if (width < 2) return;
      const first = Math.max(0, Math.ceil(u.posToVal(left, "x")));
      const last = Math.max(first, Math.floor(u.posToVal(left + width, "x")));
      u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      this.zoom(String(first), String(last));
    }

    /* A run hidden or shown from the legend takes its band along. */
    alongside(u, index) {
      if (index === null || u.series[index].class === "band") return;
      for (const band of [index + 1, index + 2]) u.setSeries(band, { show: u.series[index].show }, false);
    }

    resize() {
      this.plot?.setSize({ width: this.width(), height: HEIGHT });
    }
  }

  const charts = [...document.querySelectorAll("section.chart")].map((section) => new MetricChart(section));
  controls.addEventListener("submit", (event) => event.preventDefault());
  controls.addEventListener("change", (event) => {
    if (event.target.name === "line") {
      view.line = event.target.value;
      for (const chart of charts) if (chart.history) chart.draw();
      return;
    }
    const others = chosen();
    view.runIds = [config.run_id, ...others];
    const query = new URLSearchParams(others.map((id) => ["compare", String(id)]));
    history.replaceState(null, "", others.length ? `?${query}` : location.pathname);
    for (const chart of charts) chart.load();
  });
  let resizing = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => charts.forEach((chart) => chart.resize()), 150);
  });
  for (const chart of charts) chart.load();
})();
