/* Monetize pages: small progressive enhancements on top of the server-rendered HTML.
   - <time data-format> / <time data-relative>: dates in the viewer's locale and time zone
   - the navigation toggle on small screens
   - forms with data-confirm: a <dialog> asks before destructive actions (htmx's hx-confirm too)
   - <canvas data-chart>: Chart.js charts from a json_script block (templates/_chart.html)
   No inline scripts, no eval: everything reads data attributes and JSON. */
(function () {
  "use strict";

  var locale = undefined; // the browser's own

  function formatTimes(root) {
    root.querySelectorAll("time[data-format]").forEach(function (el) {
      var iso = el.getAttribute("datetime");
      var style = el.getAttribute("data-format");
      var date;
      var options;
      if (style === "month" && /^\d{4}-\d{2}$/.test(iso)) {
        var month = iso.split("-");
        date = new Date(+month[0], +month[1] - 1, 1);
        options = { month: "long", year: "numeric" };
      } else if (style === "date" && /^\d{4}-\d{2}-\d{2}$/.test(iso)) {
        var parts = iso.split("-");
        date = new Date(+parts[0], +parts[1] - 1, +parts[2]);
        options = { dateStyle: "medium" };
      } else {
        date = new Date(iso);
        options = style === "date" ? { dateStyle: "medium" } : { dateStyle: "medium", timeStyle: "short" };
      }
      if (isNaN(date)) return;
      el.textContent = new Intl.DateTimeFormat(locale, options).format(date);
      if (!el.title) el.title = date.toISOString();
    });
    var rtf = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(locale, { numeric: "auto" }) : null;
    root.querySelectorAll("time[data-relative]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date) || !rtf) return;
      var seconds = (date.getTime() - Date.now()) / 1000;
      var abs = Math.abs(seconds);
      var units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
      var text = null;
      for (var i = 0; i < units.length; i++) {
        if (abs >= units[i][1]) {
          text = rtf.format(Math.round(seconds / units[i][1]), units[i][0]);
          break;
        }
      }
      el.textContent = text || rtf.format(0, "second");
      el.title = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(date);
    });
  }

  function navToggle() {
    var button = document.querySelector("[data-nav-toggle]");
    var nav = document.getElementById("site-nav");
    if (!button || !nav) return;
    document.documentElement.classList.add("js");
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", open ? "false" : "true");
      nav.classList.toggle("open", !open);
    });
  }

  // ---- confirmation dialog -------------------------------------------------------------------
  var dialog, pending;
  function askConfirm(message, onYes) {
    dialog = dialog || document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(message)) onYes();
      return;
    }
    dialog.querySelector("[data-confirm-message]").textContent = message;
    pending = onYes;
    dialog.showModal();
  }
  function confirmSetup() {
    dialog = document.getElementById("confirm-dialog");
    if (dialog) {
      dialog.addEventListener("close", function () {
        var go = dialog.returnValue === "confirm" && pending;
        var action = pending;
        pending = null;
        if (go) action();
      });
    }
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var submitter = event.submitter;
      var message = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
      if (!message || form.dataset.confirmed === "1") return;
      event.preventDefault();
      askConfirm(message, function () {
        form.dataset.confirmed = "1";
        if (submitter && submitter.name) {
          var hidden = document.createElement("input");
          hidden.type = "hidden";
          hidden.name = submitter.name;
          hidden.value = submitter.value;
          form.appendChild(hidden);
        }
        form.submit();
      });
    }, true);
    document.addEventListener("htmx:confirm", function (event) {
      if (!event.detail.question) return;
      event.preventDefault();
      askConfirm(event.detail.question, function () { event.detail.issueRequest(true); });
    });
  }

  // ---- charts --------------------------------------------------------------------------------
  var PALETTE = ["#3b5bdb", "#0ca678", "#f08c00", "#e64980", "#7048e8", "#1098ad"];

  function labelFormatter(granularity) {
    var options = {
      hour: { hour: "numeric" },
      day: { month: "short", day: "numeric" },
      week: { month: "short", day: "numeric" },
      month: { month: "short", year: "numeric" },
    }[granularity] || { month: "short", day: "numeric" };
    var long = granularity === "hour" ? { dateStyle: "medium", timeStyle: "short" }
      : granularity === "month" ? { month: "long", year: "numeric" } : { dateStyle: "medium" };
    var short = new Intl.DateTimeFormat(locale, options);
    var full = new Intl.DateTimeFormat(locale, long);
    function parse(iso) {
      if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) {
        var p = iso.split("-");
        return new Date(+p[0], +p[1] - 1, +p[2]);
      }
      return new Date(iso);
    }
    return {
      short: function (iso) { return short.format(parse(iso)); },
      full: function (iso) { return full.format(parse(iso)); },
    };
  }

  function valueFormatter(data) {
    if (data.currency) {
      var money = new Intl.NumberFormat(locale, { style: "currency", currency: data.currency.toUpperCase() });
      var scale = Math.pow(10, data.exponent || 0);
      return function (v) { return money.format(v / scale); };
    }
    var number = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
    return function (v, withUnit) {
      var text = number.format(v);
      if (!withUnit || !data.unit) return text;
      return text + " " + (v === 1 ? data.unit_one : data.unit_other);
    };
  }

  function drawCharts(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var source = document.getElementById(canvas.getAttribute("data-chart"));
      if (!source) return;
      var data = JSON.parse(source.textContent);
      var labels = labelFormatter(data.granularity);
      var value = valueFormatter(data);
      canvas.dataset.drawn = "1";
      new window.Chart(canvas, {
        type: data.kind,
        data: {
          labels: data.labels,
          datasets: data.series.map(function (s, i) {
            var colour = PALETTE[i % PALETTE.length];
            return {
              label: s.label, data: s.values, backgroundColor: colour, borderColor: colour,
              borderWidth: data.kind === "line" ? 2 : 0, pointRadius: data.kind === "line" ? 2 : 0,
              maxBarThickness: 48, tension: 0.2,
            };
          }),
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: "index", intersect: false },
          plugins: {
            legend: { display: data.series.length > 1, position: "bottom" },
            tooltip: {
              callbacks: {
                title: function (items) { return items.length ? labels.full(data.labels[items[0].dataIndex]) : ""; },
                label: function (item) {
                  var text = value(item.parsed.y, true);
                  return data.series.length > 1 ? item.dataset.label + ": " + text : text;
                },
              },
            },
          },
          scales: {
            x: {
              stacked: data.stacked, grid: { display: false },
              ticks: { autoSkip: true, maxRotation: 0, autoSkipPadding: 12,
                callback: function (v, index) { return labels.short(data.labels[index]); } },
            },
            y: {
              stacked: data.stacked, beginAtZero: true,
              ticks: { maxTicksLimit: 5, callback: function (v) { return value(v, false); } },
            },
          },
        },
      });
    });
  }

  function copySetup() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest("[data-copy]");
      if (!button) return;
      var source = document.querySelector(button.getAttribute("data-copy"));
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.textContent.trim()).then(function () { button.textContent = "Copied"; });
      }
    });
  }

  function enhance(root) {
    formatTimes(root);
    drawCharts(root);
  }

  document.addEventListener("DOMContentLoaded", function () {
    navToggle();
    confirmSetup();
    copySetup();
    enhance(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) { enhance(event.target); });
})();
