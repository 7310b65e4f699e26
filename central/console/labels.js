// One table of the Chinese names of every code the console shows: device
// kinds (from GET /api/v1/kinds once signed in; this list is the fallback),
// sites, health, configuration states, policy scopes, OTA states, and the
// reasons nodes and rollouts give in English. The API keeps the codes; a
// person sees the label (the code stays in the element's title).
"use strict";

const labels = (() => {
  const TABLES = {
    kind: {
      kiosk: "便民信息亭", camera: "车牌识别摄像机", loop_detector: "车辆检测器",
      signal_controller: "信号机柜", handheld: "警务手持终端", sim: "模拟节点",
    },
    site: {
      "*": "全县", rongjiawan: "荣家湾镇", rjw: "荣家湾镇", huangshajie: "黄沙街镇", xinqiang: "新墙镇",
      boxiang: "柏祥镇", gangkou: "筻口镇", gongtian: "公田镇", maotian: "毛田镇",
      yuetian: "月田镇", zhangguying: "张谷英镇", zhongzhou: "中洲乡", changhu: "长湖乡",
    },
    health: { ok: "正常", degraded: "降级", fault: "故障" },
    config: { applied: "已生效", refused: "被拒", pending: "待下发", sent: "已下发" },
    scope: { fleet: "全部设备", kind: "按设备类型", site: "按站点", group: "按分组", device: "单台设备" },
    rollout: { running: "推送中", paused: "已暂停", cancelled: "已取消", done: "已完成" },
    fw: { queued: "已排队", deferred: "推迟", downloading: "下载中", installed: "已安装", trial: "试运行", committed: "已生效", rolled_back: "已回滚", failed: "失败" },
  };

  // English reasons from nodes and the rollout rules, as patterns.
  const REASONS = [
    [/^(\d+) of (\d+) failed$/, (m) => `${m[2]} 台中 ${m[1]} 台失败`],
    [/^timed out$/, () => "超时未报告"],
    [/^will retry: (.*)$/, (m) => `将重试：${reason(m[1])}`],
    [/^release fits (.*)$/, (m) => `版本不适用于此类设备（适用于 ${m[1]}）`],
    [/^the director does not assign (.*) to this node$/, (m) => `调度服务器未把 ${m[1]} 分配给本设备`],
    [/^(.*) is not in the image repository$/, (m) => `镜像仓库中没有 ${m[1]}`],
    [/^the director and the image repository disagree on (.*)$/, (m) => `调度服务器与镜像仓库对 ${m[1]} 的记录不一致`],
    [/^rolled back at start$/, () => "启动时已回滚"],
    [/^the new release did not stay up \(exit status (.*)\)$/, (m) => `新版本未能持续运行（退出码 ${m[1]}），已回滚`],
    [/^the new release was not committed before its deadline$/, () => "新版本未在期限内确认，已回滚"],
    [/^no link to the broker$/, () => "与消息服务器断开"],
    [/^faults: (.*)$/, (m) => `设备故障：${m[1]}`],
    [/^a citizen is using the kiosk$/, () => "群众正在使用信息亭"],
    [/^peak hours (.*) at this junction$/, (m) => `本路口高峰时段 ${m[1]}`],
    [/^an SOS is in progress$/, () => "正在紧急求救"],
  ];

  function of(table, code) {
    if (code === null || code === undefined || code === "") return "";
    return (TABLES[table] || {})[code] || String(code);
  }

  // A reason in Chinese; one we do not know keeps the node's own words.
  function reason(text) {
    if (!text) return "";
    for (const [pattern, say] of REASONS) {
      const m = String(text).match(pattern);
      if (m) return say(m);
    }
    return `设备原文：${text}`;
  }

  // Fill in a cell: the label shown, the code kept in the title.
  function cell(td, table, code) {
    td.textContent = of(table, code);
    if (code) td.title = String(code);
    return td;
  }

  // The registry's kinds (code, label), asked for once per sign-in: the
  // labels here and the console's kind pickers share the one answer.
  let kinds = null;
  function loadKinds() {
    kinds = kinds || api("/api/v1/kinds").then((answer) => {
      for (const k of answer.kinds || []) TABLES.kind[k.code] = k.label;
      return answer.kinds || [];
    }).catch(() => { kinds = null; return []; });  // a role that reads no devices: the fallback stays
    return kinds;
  }

  return { of, reason, cell, loadKinds, TABLES };
})();
