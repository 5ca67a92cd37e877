/** The console's two languages. Keys are English phrases' ids; zh-CN is Simplified Chinese. */
export type Lang = 'en' | 'zh-CN';

const zh: Record<string, string> = {
  overview: '总览',
  gateway: '网关',
  inference: '推理',
  edge: '边缘',
  v2x: '车路协同',
  devices: '设备',
  jobs: '作业',
  audit: '审计',
  login: '登录',
  logout: '退出',
  'admin token': '管理令牌',
  'log in with a token of admin.tokens': '使用 admin.tokens 中的令牌登录',
  capabilities: '能力状态',
  ready: '就绪',
  not_ready: '未就绪',
  stopping: '停止中',
  'requests/s': '请求/秒',
  'errors/s': '错误/秒',
  'last hour': '最近一小时',
  area: '区域',
  component: '组件',
  state: '状态',
  detail: '详情',
  'usage over time': '用量趋势',
  'by model': '按模型',
  'by key': '按密钥',
  'by status': '按状态',
  requests: '请求',
  errors: '错误',
  tokens: '令牌数',
  groups: '分组',
  keys: 'API 密钥',
  name: '名称',
  created: '创建时间',
  revoke: '吊销',
  create: '创建',
  'new key name': '新密钥名称',
  'key created (shown once)': '密钥已创建（仅显示一次）',
  circuits: '熔断器',
  target: '目标',
  models: '模型',
  version: '版本',
  reason: '原因',
  load: '加载',
  unload: '卸载',
  'mean latency (ms)': '平均延迟（毫秒）',
  'telemetry devices': '遥测设备',
  'waiting for data': '等待数据',
  device: '设备',
  'last seen': '最后上报',
  points: '数据点',
  'live telemetry': '实时遥测',
  field: '字段',
  'query explorer': '查询浏览器',
  run: '查询',
  'dead letters': '死信',
  vehicles: '车辆',
  warnings: '预警',
  zones: '电子围栏',
  'zone id': '围栏 ID',
  'GeoJSON polygon': 'GeoJSON 多边形',
  save: '保存',
  delete: '删除',
  'GM registrations': '国密设备注册',
  serial: '序列号',
  group: '分组',
  vehicle: '车辆',
  status: '状态',
  more: '更多',
  job: '作业',
  tasks: '任务',
  'live events': '实时事件',
  verify: '校验',
  'chain verified': '审计链校验通过',
  'chain broken': '审计链已断裂',
  actor: '操作者',
  action: '动作',
  outcome: '结果',
  time: '时间',
  'nothing yet': '暂无数据',
  'not enabled here': '此实例未启用',
  live: '实时',
  offline: '离线',
  language: '语言',
  'signed in as': '当前用户',
  'dropped frames': '丢弃帧',
  'messages/s': '消息/秒',
  'no device chosen': '未选择设备',
  queue: '队列',
  'rate by area': '各区域请求率',
};

let lang: Lang = 'en';

export function setLang(l: Lang): void {
  lang = l;
  document.documentElement.lang = l;
}

export const currentLang = (): Lang => lang;

/** The phrase in the current language (English is the key itself). */
export function t(key: string): string {
  return lang === 'zh-CN' ? (zh[key] ?? key) : key;
}

/** Numbers and times in the current language's format. */
export const fmt = (n: number, digits = 0) =>
  n.toLocaleString(lang, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
export const fmtTime = (ms: number | string) => new Date(ms).toLocaleString(lang, { hour12: false });
