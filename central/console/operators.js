// 用户管理 (admins only): operators, their role and districts (辖区), enable or
// disable, reset a password (a one-time password is shown once). Every change
// is audited by central and ends the operator's sessions there.
"use strict";

const operatorsPage = (() => {
  const ROLE = ROLE_NAMES;  // app.js
  const DISTRICT = {
    "*": "全县", rongjiawan: "荣家湾镇", huangshajie: "黄沙街镇", xinqiang: "新墙镇",
    boxiang: "柏祥镇", gangkou: "筻口镇", gongtian: "公田镇", maotian: "毛田镇",
    yuetian: "月田镇", zhangguying: "张谷英镇", zhongzhou: "中洲乡", changhu: "长湖乡",
  };
  const district = (code) => DISTRICT[code] || code;

  function option(value, label, selected) {
    const o = document.createElement("option");
    o.value = value; o.textContent = label; o.selected = o.defaultSelected = !!selected;
    return o;
  }
  function roleSelect(current) {
    const s = document.createElement("select");
    for (const [k, v] of Object.entries(ROLE)) s.appendChild(option(k, v, k === current));
    return s;
  }
  function districtSelect(current) {
    const s = document.createElement("select");
    s.multiple = true; s.size = 4;
    const codes = new Set([...Object.keys(DISTRICT), ...current]);
    for (const code of codes) s.appendChild(option(code, district(code), current.includes(code)));
    return s;
  }
  const chosen = (select) => [...select.selectedOptions].map((o) => o.value);

  // Central answers in English for engineers; a person reads Chinese.
  async function call(path, method, body, what) {
    const res = await authFetch(path, {
      method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (res.ok) return res.json();
    const detail = await res.json().then((b) => JSON.stringify(b.detail)).catch(() => "");
    if (res.status === 401) { logout(); throw new Error("未登录或登录已过期"); }
    if (res.status === 403) throw new Error("只有系统管理员可以管理用户");
    if (res.status === 409 && detail.includes("last")) throw new Error("不能停用最后一个启用的系统管理员，也不能改变其角色");
    if (res.status === 409) throw new Error("用户名已存在");
    if (res.status === 422 && detail.includes("password")) throw new Error("密码不符合要求：至少 12 个字符、至少 5 种不同字符，且不能包含用户名");
    if (res.status === 422) throw new Error(`${what}的内容不正确，请检查后重试`);
    throw new Error(`${what}失败（${res.status}）`);
  }

  function say(text) { $("#operators-msg").textContent = text; }
  function showSecret(username, password) {
    $("#operator-otp-user").textContent = username;
    $("#operator-otp").textContent = password;
    $("#operator-secret").hidden = false;
  }

  function row(o) {
    const tr = document.createElement("tr");
    tr.id = "op-" + o.username;
    const cell = (child) => { const td = document.createElement("td"); td.append(child); tr.appendChild(td); return td; };
    cell(o.username);
    const role = roleSelect(o.role); role.dataset.field = "role"; role.setAttribute("aria-label", "角色");
    cell(role);
    const scope = districtSelect(o.scope); scope.dataset.field = "scope"; scope.setAttribute("aria-label", "辖区");
    cell(scope);
    const badge = document.createElement("span");
    badge.className = "badge " + (o.active ? "on" : "off"); badge.dataset.field = "active";
    badge.textContent = o.active ? "启用" : "已停用";
    cell(badge);
    cell(timeText(o.created_at));
    const actions = document.createElement("div"); actions.className = "row";
    const button = (label, action, run) => {
      const b = document.createElement("button"); b.type = "button"; b.textContent = label; b.dataset.action = action;
      b.addEventListener("click", () => run().catch((e) => say(e.message)));
      actions.appendChild(b);
    };
    button("保存角色和辖区", "save", async () => {
      await call(`/api/v1/operators/${encodeURIComponent(o.username)}`, "PATCH",
        { role: role.value, scope: chosen(scope) }, "修改角色和辖区");
      say(`已保存 ${o.username} 的角色和辖区；其登录已失效，需重新登录`);
      await load();
    });
    button(o.active ? "停用" : "启用", "toggle", async () => {
      await call(`/api/v1/operators/${encodeURIComponent(o.username)}`, "PATCH", { active: !o.active }, o.active ? "停用" : "启用");
      say(o.active ? `已停用 ${o.username}，其登录立即失效` : `已启用 ${o.username}`);
      await load();
    });
    button("重置密码", "reset", async () => {
      if (!window.confirm(`为 ${o.username} 生成一次性密码？其现有登录将全部失效。`)) return;
      const r = await call(`/api/v1/operators/${encodeURIComponent(o.username)}/password`, "POST", {}, "重置密码");
      showSecret(o.username, r.one_time_password);
      say(`已重置 ${o.username} 的密码`);
    });
    cell(actions);
    return tr;
  }

  async function load() {
    const ops = await api("/api/v1/operators");
    $("#operator-rows").replaceChildren(...ops.map(row));
  }

  const form = $("#operator-form");
  for (const [k, v] of Object.entries(ROLE)) form.elements.role.appendChild(option(k, v, k === "traffic"));
  for (const [k, v] of Object.entries(DISTRICT)) form.elements.scope.appendChild(option(k, v, k === "*"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { username: f.get("username"), role: f.get("role"), scope: chosen(form.elements.scope) };
    if (f.get("password")) body.password = f.get("password");
    try {
      const r = await call("/api/v1/operators", "POST", body, "新建用户");
      if (r.one_time_password) showSecret(r.username, r.one_time_password); else $("#operator-secret").hidden = true;
      say(`已新建 ${r.username}（${ROLE[r.role] || r.role}，${r.scope.map(district).join("、")}）`);
      form.reset();
      await load();
    } catch (err) { say(err.message); }
  });

  return { load };
})();
