/* The overview's flow chart (this project's own; uPlot draws it): jobs finished per
   minute by lane and outcome over the last hour or day, from /api/flow, read again every
   few seconds. Text from the server is only set as textContent (uPlot does the same). */
"use strict";
(() => {
  const REFRESH_MS = 10_000;
  const HEIGHT = 240;
  const LANE_COLORS = { interactive: "#1b5fa8", maintenance: "#7c3aed", bulk: "#c2410c" };
  const holder = document.getElementById("flow-chart");
  const empty = document.getElementById("flow-empty");
  const buttons = [...document.querySelectorAll("#flow-windows button")];
  let chart = null;
  let shape = "";
  let window_ = "hour";

  function series(flow) {
    return flow.series.map((one) => ({
      label: `${one.lane} ${one.state}`,
      stroke: LANE_COLORS[one.lane] || "#555",
      width: one.state === "succeeded" ? 2 : 1.5,
      dash: one.state === "succeeded" ? undefined : [6, 4],
      points: { show: false },
    }));
  }

  function draw(flow) {
    empty.hidden = flow.series.length > 0;
    const data = [flow.starts, ...flow.series.map((one) => one.jobs)];
    const key = `${flow.window}|${flow.series.map((one) => one.lane + one.state).join(",")}`;
    if (chart && key === shape) {
      chart.setData(data);
      return;
    }
    if (chart) chart.destroy();
    shape = key;
    chart = new uPlot(
      {
        width: Math.max(320, holder.clientWidth),
        height: HEIGHT,
        series: [{ label: "time" }, ...series(flow)],
        axes: [{}, { label: "jobs / min", size: 60 }],
        scales: { x: { time: true } },
        legend: { live: true },
      },
      data,
      holder,
    );
  }

  async function refresh() {
    try {
      const answer = await fetch(`/api/flow?window=${window_}`, { headers: { Accept: "application/json" } });
      if (answer.ok) draw(await answer.json());
    } catch (problem) {
      /* the next refresh tries again */
    }
  }

  for (const button of buttons) {
    button.addEventListener("click", () => {
      window_ = button.dataset.window;
      for (const other of buttons) other.setAttribute("aria-pressed", String(other === button));
      refresh();
    });
  }
  window.addEventListener("resize", () => chart && chart.setSize({ width: Math.max(320, holder.clientWidth), height: HEIGHT }));
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
