// The credit officer's page: plain JavaScript and SVG, no dependencies, nothing fetched from
// elsewhere. Every call goes to this service's own API with the officer's key as a bearer token.
"use strict";

const KEY = "creditguard-key";
const $ = (sel) => document.querySelector(sel);
const money = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
const fmtMoney = (v) => (v === null || v === undefined ? "—" : money.format(v));
const fmtPct = (p) => (p === null || p === undefined ? "—" : `${(100 * p).toFixed(p < 0.01 ? 2 : 1)} %`);
const VIEWS = ["signin-view", "search-view", "client-view", "applicant-view"];
const DECISIONS = {
  approve: "Approved in full",
  approve_in_part: "Approved in part",
  reduce: "Reduce, in steps",
  hold: "Hold new orders",
  refuse: "Refused",
  refer: "Referred to an analyst",
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function show(view) {
  for (const v of VIEWS) $(`#${v}`).hidden = v !== view;
  $("#nav").hidden = view === "signin-view";
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("#error").hidden = true;
  $("#error").textContent = "";
}

function detailOf(body, text) {
  if (body && Array.isArray(body.detail)) {
    return body.detail
      .map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`)
      .join("; ");
  }
  if (body && typeof body.error === "string") return body.error;
  if (body && typeof body.detail === "string") return body.detail;
  return text || "no details";
}

function explain(err) {
  if (!(err instanceof ApiError)) return `Something went wrong on this page: ${err.message}`;
  switch (true) {
    case err.status === 0:
      return "The service cannot be reached. Check that it is running and try again.";
    case err.status === 401:
      return `Your API key was refused (${err.message}). Sign in again with a valid key.`;
    case err.status === 403:
      return `Your key may not do this (${err.message}).`;
    case err.status === 404:
      return `Not found: ${err.message}.`;
    case err.status === 400 || err.status === 415 || err.status === 422:
      return `The request was not accepted: ${err.message}.`;
    default:
      return `The service failed (HTTP ${err.status}): ${err.message}. Try again or tell your administrator.`;
  }
}

async function api(path, payload) {
  const busy = $("#busy");
  busy.hidden = false;
  let response;
  try {
    response = await fetch(`../${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}`,
      },
      body: JSON.stringify(payload),
    });
  } catch (e) {
    throw new ApiError(0, String(e));
  } finally {
    busy.hidden = true;
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (e) {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, detailOf(body, text));
  return body;
}

async function guarded(action) {
  clearError();
  try {
    await action();
  } catch (err) {
    showError(explain(err));
    if (err instanceof ApiError && err.status === 401) {
      sessionStorage.removeItem(KEY);
      show("signin-view");
    }
  }
}

// ------------------------------------------------------------------------------------------
// Sign in, search

async function signIn(event) {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  if (!key) return showError("Enter your API key.");
  sessionStorage.setItem(KEY, key);
  await guarded(async () => {
    await api("search_clients", { query: "C" }); // any authorised call proves the key
    $("#api-key").value = "";
    if (!location.hash || location.hash === "#signin") location.hash = "#search";
    else route();
  });
}

function signOut() {
  sessionStorage.removeItem(KEY);
  clearError();
  location.hash = "#signin";
}

async function runSearch(event) {
  event.preventDefault();
  const query = $("#query").value.trim();
  if (!query) return showError("Enter part of a client id or name.");
  await guarded(async () => {
    const { matches } = await api("search_clients", { query });
    const body = $("#results tbody");
    body.replaceChildren();
    for (const m of matches) {
      const tr = document.createElement("tr");
      const link = document.createElement("a");
      link.href = `#client/${encodeURIComponent(m.client_id)}`;
      link.textContent = m.client_id;
      tr.append(cell(link), cell(m.name), cell(m.country), cell(m.industry));
      body.append(tr);
    }
    $("#results").hidden = matches.length === 0;
    $("#no-results").hidden = matches.length !== 0;
    // an exact id goes straight to the client
    if (matches.length && matches[0].client_id.toLowerCase() === query.toLowerCase()) {
      location.hash = `#client/${encodeURIComponent(matches[0].client_id)}`;
    }
  });
}

function cell(content, cls) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  if (cls) td.className = cls;
  return td;
}

// The client's dunning letter, when its stage calls for one: a printable HTML file saved from
// the document the service sent (no second request, nothing fetched elsewhere; a file, because
// a page opened from this one would inherit its content policy and lose the letter's styles).
let letterUrl = null;
function showLetter(letter) {
  const link = $("#letter-link");
  if (letterUrl) URL.revokeObjectURL(letterUrl);
  letterUrl = null;
  link.hidden = !letter;
  if (!letter) return;
  letterUrl = URL.createObjectURL(new Blob([letter.html], { type: "text/html" }));
  link.href = letterUrl;
  link.download = `${letter.client_id}-${letter.template}.html`;
  link.textContent = `Save the ${letter.template.replace("_", " ")} letter (${letter.language}, HTML)`;
}

// The insurer's limit beside ours: what it covers, and what to ask for.
function showInsurance(ins) {
  const cell = $("#insurer-limit");
  if (!ins) {
    cell.textContent = "not insured";
    return;
  }
  const limit = ins.insurer_limit === null ? "none" : `${fmtMoney(ins.insurer_limit)} (${ins.insurer_status})`;
  cell.replaceChildren(
    document.createTextNode(`${limit}; insured ${fmtMoney(ins.insured_exposure)}, uninsured ${fmtMoney(ins.uninsured_exposure)}`),
    Object.assign(document.createElement("div"), {
      className: ins.note === "exposure above cover" ? "meta flag" : "meta",
      textContent: [ins.note, `expected loss net of insurance ${fmtMoney(ins.expected_loss_net)}`].filter(Boolean).join(" · "),
    }),
  );
}

// In the reporting currency; an invoice in another currency shows its own amount beside it.
function outstanding(i, reporting) {
  const own = i.currency && i.currency !== reporting ? ` (${fmtMoney(i.outstanding_in_currency)} ${i.currency})` : "";
  return `${fmtMoney(i.outstanding)}${own}`;
}

// Late interest plus fixed compensation to date, with the rule applied as a tooltip.
function charges(i) {
  const total = i.late_interest + (i.late_compensation || 0);
  const cell = document.createElement("span");
  cell.textContent = total > 0 ? fmtMoney(total) : "";
  cell.title = i.late_charges_rule || "";
  return cell;
}

function row(...cells) {
  const tr = document.createElement("tr");
  tr.append(...cells.map((c) => cell(c)));
  return tr;
}

// ------------------------------------------------------------------------------------------
// The client view

let current = null; // the client id on screen

async function loadClient(clientId) {
  show("client-view");
  current = clientId;
  $("#decision").hidden = true;
  $("#amount").value = "";
  await guarded(async () => {
    const view = await api("client_view", { client_id: clientId });
    renderClient(view);
  });
}

const STATUS = {
  in_default: "In default",
  undetermined: "Status undetermined",
  dormant: "Dormant",
  new: "New client",
  active: "Active",
};

function gradeLabel(scale, grade) {
  return grade === "D" ? "in default" : scale[Number(grade) - 1].label;
}

function listItems(list, items, empty) {
  list.replaceChildren();
  for (const [text, cls] of items.length ? items : [[empty, ""]]) {
    const li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    list.append(li);
  }
}

function renderClient(v) {
  const s = v.score;
  $("#client-title").textContent = `${v.name} (${s.client_id})`;
  $("#client-meta").textContent =
    `${v.industry}, ${v.country} · client since ${v.onboarded_on} · as of ${s.as_of} · ` +
    `models ${Object.entries(s.model_versions).map(([k, x]) => `${k} v${x}`).join(", ")}`;
  const status = $("#status");
  status.textContent = `${STATUS[s.status] || s.status}${s.status_reason ? `: ${s.status_reason}` : ""}`;
  status.className = `status status-${s.status}`;
  $("#pd").textContent = fmtPct(s.decision_pd);
  $("#pit-pd").textContent = s.status === "in_default" ? "" : `(this month alone: ${fmtPct(s.pd_12m)})`;
  $("#grade").textContent = s.grade;
  $("#grade-label").textContent = `(${gradeLabel(v.master_scale, s.grade)})`;
  $("#grade-change").textContent =
    v.grade_a_month_ago === null ? "" : `a month ago: grade ${v.grade_a_month_ago}, decision PD ${fmtPct(v.pd_a_month_ago)}`;
  $("#sufficiency").textContent = `Data: ${s.data_sufficiency}`;
  drawScale(v.master_scale, s.grade, v.grade_a_month_ago);
  const over = s.over_limit ? ` — over by ${fmtMoney(s.over_limit_amount)}` : "";
  $("#current-limit").textContent = s.current_limit === null ? "none" : `${fmtMoney(s.current_limit)}${over}`;
  $("#current-limit").className = s.over_limit ? "flag" : "";
  $("#recommended-limit").textContent = fmtMoney(s.recommended_limit);
  $("#limit-rule").textContent = s.limit_rule;
  $("#open-balance").textContent = fmtMoney(s.open_balance);
  $("#overdue").textContent = s.overdue_balance
    ? `${fmtMoney(s.overdue_balance)} (up to ${Math.round(s.max_days_past_due)} days)`
    : "nothing overdue";
  $("#terms").textContent = s.current_terms || "—";
  $("#recommended-terms").replaceChildren(
    document.createTextNode(s.recommended_terms || "—"),
    Object.assign(document.createElement("div"), { className: "meta", textContent: s.terms_rule ? `rule: ${s.terms_rule}` : "" }),
  );
  $("#expected-loss").textContent = fmtMoney(s.expected_loss);
  $("#late-p").textContent = fmtPct(s.late_payment_probability);
  $("#country-risk").textContent =
    `${v.country}: class ${s.country_risk}${s.transfer_risk ? " (transfer risk)" : ""}`;
  $("#country-risk").className = s.transfer_risk ? "flag" : "";
  listItems(
    $("#warnings"),
    v.early_warnings.map((w) => [`${w.severity}: ${w.flags.join("; ")} → ${w.action}`, `flag ${w.severity}`]),
    "none in the last month",
  );
  listItems(
    $("#worklist"),
    v.worklist.map((w) => [
      `${w.queue}, stage ${w.stage}: ${w.action} (${fmtMoney(w.overdue_amount)} overdue, ${w.invoices} invoice(s)${w.late_interest > 0 ? `; late interest ${fmtMoney(w.late_interest)}${w.late_compensation ? ` and ${fmtMoney(w.late_compensation)} fixed compensation` : ""}` : ""}${w.over_limit_amount > 0 ? `; ${fmtMoney(w.over_limit_amount)} over the limit` : ""}); next: ${w.next_step} on ${w.next_step_on}`,
      "",
    ]),
    "nothing to collect",
  );
  showLetter(v.letter);
  listItems(
    $("#actions"),
    v.actions.map((a) => [
      `${a.on}: ${a.action.replaceAll("_", " ")}${a.invoice_id ? ` (${a.invoice_id})` : ""}${a.amount !== null ? `, ${fmtMoney(a.amount)}` : ""}${a.note ? ` — ${a.note}` : ""}`,
      "",
    ]),
    "none recorded",
  );
  showInsurance(v.insurance);
  drawWaterfall(v.waterfall, s.pd_12m);
  drawHistory(v.payment_history);
  const aging = $("#aging tbody");
  aging.replaceChildren(...v.aging.map((a) => row(a.bucket, a.invoices, fmtMoney(a.amount))));
  const days = (x) => (x === null ? "—" : x.toFixed(1));
  const dso = $("#dso tbody");
  dso.replaceChildren(
    ...v.dso
      .slice(-6)
      .reverse()
      .map((d) =>
        row(d.month.slice(0, 7), days(d.dso), days(d.countback_dso), days(d.best_possible_dso), days(d.average_days_delinquent)),
      ),
  );
  const open = $("#open-invoices tbody");
  open.replaceChildren(
    ...v.open_invoices.map((i) =>
      row(i.invoice_id, i.due_on, outstanding(i, v.reporting_currency), i.days_past_due, charges(i), i.queue, i.action),
    ),
  );
  if (!v.open_invoices.length) open.append(row("no open invoices", "", "", "", "", "", ""));
  const fin = $("#financials");
  fin.replaceChildren();
  if (!v.financials) {
    fin.append(row("No financial statement on file", ""));
  } else {
    const f = v.financials;
    const ratio = (x) => (x === null ? "—" : x.toFixed(2));
    const growth = f.revenue_growth === null ? "—" : `${(100 * f.revenue_growth).toFixed(1)} %`;
    for (const [k, x] of [
      ["Period end", f.period_end],
      ["Revenue", fmtMoney(f.revenue)],
      ["Revenue growth", growth],
      ["Equity", fmtMoney(f.equity)],
      ["Total assets", fmtMoney(f.total_assets)],
      ["Total liabilities", fmtMoney(f.total_liabilities)],
      ["Current ratio", ratio(f.current_ratio)],
      ["Cash", fmtMoney(f.cash)],
      ["Operating cash flow", fmtMoney(f.operating_cash_flow)],
    ]) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.textContent = k;
      tr.append(th, cell(x));
      fin.append(tr);
    }
  }
}

const SVG = "http://www.w3.org/2000/svg";
function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function gradeColour(g) {
  const hue = 120 - ((g - 1) * 120) / 9; // green to red
  return `hsl(${hue}, 65%, 48%)`;
}

function drawScale(scale, grade, before) {
  const svg = $("#scale");
  svg.replaceChildren();
  const w = 50;
  const bands = [...scale, { grade: "D", label: "in default", upper_pd: 1 }];
  const at = (g) => (g === "D" ? scale.length : Number(g) - 1);
  bands.forEach((band, i) => {
    const x = i * w;
    const fill = band.grade === "D" ? "#333" : gradeColour(band.grade);
    const rect = el("rect", { x, y: 18, width: w - 2, height: 22, fill });
    const tip = band.grade === "D" ? "grade D: in default" : `grade ${band.grade}: ${band.label}, PD up to ${fmtPct(band.upper_pd)}`;
    rect.append(el("title", {}, tip));
    svg.append(rect, el("text", { x: x + w / 2 - 1, y: 34, "text-anchor": "middle", class: "scale-num" }, band.grade));
    if (band.grade !== "D") {
      svg.append(el("text", { x: x + w - 2, y: 54, "text-anchor": "end", class: "scale-pd" }, fmtPct(band.upper_pd)));
    }
  });
  if (before !== null && before !== grade) {
    const bx = at(before) * w + w / 2 - 1;
    svg.append(el("path", { d: `M${bx - 6},2 L${bx + 6},2 L${bx},14 Z`, fill: "none", stroke: "#555", id: "scale-before" }));
  }
  const x = at(grade) * w + w / 2 - 1;
  svg.append(el("path", { d: `M${x - 7},1 L${x + 7},1 L${x},15 Z`, fill: "#111", id: "scale-marker" }));
}

function drawWaterfall(steps, pd) {
  const svg = $("#waterfall");
  svg.replaceChildren();
  if (!steps.length) {
    svg.setAttribute("viewBox", "0 0 940 30");
    svg.append(el("text", { x: 4, y: 20, class: "wf-label" }, "In default: its status explains it, not the model (see above)."));
    return;
  }
  const labelW = 470;
  const chartW = 400;
  const rowH = 24;
  const points = [steps[0].value];
  for (const s of steps.slice(1)) points.push(points[points.length - 1] + s.value);
  const lo = Math.min(...points);
  const hi = Math.max(...points);
  const pad = (hi - lo || 1) * 0.08;
  const x = (v) => labelW + ((v - lo + pad) / (hi - lo + 2 * pad)) * chartW;
  const rows = steps.length + 1;
  svg.setAttribute("viewBox", `0 0 ${labelW + chartW + 70} ${rows * rowH + 10}`);
  let total = steps[0].value;
  steps.forEach((s, i) => {
    const y = i * rowH + 4;
    const label = s.label.length > 72 ? `${s.label.slice(0, 70)}…` : s.label;
    const t = el("text", { x: labelW - 8, y: y + 15, "text-anchor": "end", class: "wf-label" }, label);
    t.append(el("title", {}, s.label));
    svg.append(t);
    if (i === 0) {
      svg.append(el("rect", { x: x(total) - 1.5, y: y + 2, width: 3, height: rowH - 8, fill: "#333" }));
      svg.append(el("text", { x: x(total) + 6, y: y + 15, class: "wf-value" }, total.toFixed(2)));
      return;
    }
    const start = total;
    total += s.value;
    const left = x(Math.min(start, total));
    const width = Math.max(Math.abs(x(total) - x(start)), 1);
    const bar = el("rect", {
      x: left, y: y + 2, width, height: rowH - 8,
      fill: s.value > 0 ? "#c0392b" : "#27ae60", class: "wf-bar",
    });
    bar.append(el("title", {}, `${s.label}: ${s.value > 0 ? "+" : ""}${s.value.toFixed(3)}`));
    svg.append(bar);
    svg.append(el("text", { x: left + width + 4, y: y + 15, class: "wf-value" }, `${s.value > 0 ? "+" : ""}${s.value.toFixed(2)}`));
  });
  const y = steps.length * rowH + 4;
  svg.append(el("text", { x: labelW - 8, y: y + 15, "text-anchor": "end", class: "wf-label wf-total" }, `this client: raw score → PD ${fmtPct(pd)}`));
  svg.append(el("rect", { x: x(total) - 1.5, y: y + 2, width: 3, height: rowH - 8, fill: "#111" }));
  svg.append(el("text", { x: x(total) + 6, y: y + 15, class: "wf-value" }, total.toFixed(2)));
}

function drawHistory(months) {
  const svg = $("#history");
  svg.replaceChildren();
  if (!months.length) {
    svg.append(el("text", { x: 10, y: 30 }, "No invoices settled in the last 24 months."));
    return;
  }
  const left = 40;
  const w = 470;
  const h = 160;
  const top = Math.max(10, ...months.map((m) => m.max_days_past_due));
  const step = w / months.length;
  const y = (v) => 10 + h - (v / top) * h;
  svg.append(el("line", { x1: left, y1: y(0), x2: left + w, y2: y(0), stroke: "#999" }));
  for (const tick of [0, top / 2, top]) {
    svg.append(el("text", { x: left - 4, y: y(tick) + 4, "text-anchor": "end", class: "axis" }, Math.round(tick)));
  }
  if (top > 30) {
    svg.append(el("line", { x1: left, y1: y(30), x2: left + w, y2: y(30), stroke: "#e67e22", "stroke-dasharray": "4 3" }));
  }
  months.forEach((m, i) => {
    const bx = left + i * step;
    const bar = el("rect", {
      x: bx + 1, y: y(m.mean_days_past_due), width: Math.max(step - 2, 1),
      height: y(0) - y(m.mean_days_past_due), fill: "#5b8dd6", class: "history-bar",
    });
    bar.append(el("title", {}, `${m.month}: ${m.invoices} settled, mean ${m.mean_days_past_due} / worst ${m.max_days_past_due} days past due`));
    svg.append(bar, el("circle", { cx: bx + step / 2, cy: y(m.max_days_past_due), r: 2.5, fill: "#c0392b" }));
    if (i % 3 === 0) svg.append(el("text", { x: bx + step / 2, y: h + 28, "text-anchor": "middle", class: "axis" }, m.month));
  });
}

function parseAmount(text) {
  const cleaned = String(text).replace(/[\s,']/g, "");
  if (!/^\d+(\.\d+)?$/.test(cleaned)) return null;
  const value = Number(cleaned);
  return value > 0 && value <= 1e12 ? value : null;
}

async function requestLimit(event) {
  event.preventDefault();
  const amount = parseAmount($("#amount").value);
  if (amount === null) {
    return showError("Invalid amount: enter the requested limit as a positive number, e.g. 50000.");
  }
  await guarded(async () => {
    const doc = await api("score", { client_id: current, requested_limit: amount });
    showDecision($("#decision"), doc, amount);
  });
}

function showDecision(box, doc, amount) {
  box.replaceChildren();
  const d = doc.limit_decision;
  const head = document.createElement("p");
  head.className = `decision ${d.decision}`;
  head.id = box.id === "decision" ? "decision-text" : "applicant-decision-text";
  const amountText = d.decision === "approve_in_part" ? `: ${fmtMoney(d.approved_amount)} of ${fmtMoney(amount)}` :
    d.decision === "approve" ? `: ${fmtMoney(d.approved_amount)}` :
    d.decision === "reduce" ? `: to ${fmtMoney(d.approved_amount)} now` :
    d.decision === "hold" ? `: until the balance falls to ${fmtMoney(d.approved_amount)}` : "";
  head.textContent = `${DECISIONS[d.decision] || d.decision}${amountText}`;
  const rules = document.createElement("ul");
  rules.className = "rules";
  for (const r of d.rules) {
    const li = document.createElement("li");
    li.textContent = r;
    rules.append(li);
  }
  const why = document.createElement("p");
  why.className = "meta";
  why.textContent = `Decision PD ${fmtPct(doc.decision_pd)}, grade ${doc.grade}. ${doc.status_reason ? `${doc.status_reason}. ` : ""}Main reasons: ` +
    (doc.risk_reasons.map((r) => r.text).join("; ") || "none");
  const note = document.createElement("p");
  note.className = "meta";
  note.textContent = "This decision was recorded in the audit log.";
  box.append(head, rules, why, note);
  box.hidden = false;
}

// ------------------------------------------------------------------------------------------
// The applicant view

const NUMBER_FIELDS = new Set([
  "registered_capital", "revenue", "total_assets", "total_liabilities", "current_assets",
  "current_liabilities", "cash", "operating_cash_flow", "equity", "average_days_beyond_terms",
  "max_days_beyond_terms", "expected_monthly_purchases", "requested_limit",
]);

function readApplicant(form) {
  const values = {};
  for (const input of form.querySelectorAll("input")) {
    if (input.type === "checkbox") {
      values[input.name] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (!raw) continue;
    if (NUMBER_FIELDS.has(input.name)) {
      const n = Number(raw.replace(/[\s,']/g, ""));
      if (!Number.isFinite(n)) throw new Error(`"${input.labels[0].textContent.trim()}" must be a number`);
      values[input.name] = n;
    } else {
      values[input.name] = raw;
    }
  }
  for (const required of ["name", "country", "industry"]) {
    if (!values[required]) throw new Error(`"${required}" is required`);
  }
  const pick = (names) => Object.fromEntries(names.filter((n) => n in values).map((n) => [n, values[n]]));
  const body = {
    profile: pick(["name", "country", "industry", "registered_capital", "founded_on", "external_rating"]),
    financials: [],
    trade_references: [],
  };
  const statement = pick(["period_end", "revenue", "total_assets", "total_liabilities", "current_assets",
    "current_liabilities", "cash", "operating_cash_flow", "equity"]);
  if (Object.keys(statement).length) {
    if (!statement.period_end) throw new Error('"Period end" is required for a financial statement');
    body.financials.push(statement);
  }
  if (values.supplier) {
    const ref = pick(["supplier", "average_days_beyond_terms", "max_days_beyond_terms"]);
    if (!("average_days_beyond_terms" in ref) || !("max_days_beyond_terms" in ref)) {
      throw new Error("a trade reference needs its average and worst days beyond terms");
    }
    ref.written_off = values.written_off;
    body.trade_references.push(ref);
  }
  for (const n of ["expected_monthly_purchases", "requested_limit"]) if (n in values) body[n] = values[n];
  return body;
}

async function scoreApplicant(event) {
  event.preventDefault();
  let body;
  try {
    body = readApplicant(event.target);
  } catch (err) {
    return showError(`Check the form: ${err.message}.`);
  }
  await guarded(async () => {
    const doc = await api("score_applicant", body);
    const box = $("#applicant-result");
    box.replaceChildren();
    const head = document.createElement("p");
    head.id = "applicant-score";
    head.textContent = `PD ${fmtPct(doc.decision_pd)} · grade ${doc.grade} · recommended limit ${fmtMoney(doc.recommended_limit)} · ${doc.data_sufficiency}`;
    box.append(head);
    const list = document.createElement("ul");
    for (const t of [...doc.risk_reasons.map((r) => `▲ ${r.text}`), ...doc.strengths.map((r) => `▼ ${r.text}`),
      ...doc.trade_reference_findings]) {
      const li = document.createElement("li");
      li.textContent = t;
      list.append(li);
    }
    box.append(list);
    if (doc.limit_decision) {
      const d = document.createElement("div");
      d.id = "applicant-decision";
      box.append(d);
      showDecision(d, doc, body.requested_limit);
    }
    box.hidden = false;
  });
}

// ------------------------------------------------------------------------------------------
// Routing: #search, #client/ID, #applicant

function route() {
  if (!sessionStorage.getItem(KEY)) return show("signin-view");
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith("client/")) return loadClient(hash.slice("client/".length));
  if (hash === "applicant") return show("applicant-view");
  clearError();
  return show("search-view");
}

window.addEventListener("hashchange", () => {
  clearError();
  route();
});
window.addEventListener("error", (e) => showError(`Something went wrong on this page: ${e.message}`));
$("#signin-form").addEventListener("submit", signIn);
$("#sign-out").addEventListener("click", signOut);
$("#search-form").addEventListener("submit", runSearch);
$("#limit-form").addEventListener("submit", requestLimit);
$("#applicant-form").addEventListener("submit", scoreApplicant);
route();
