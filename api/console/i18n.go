package console

import (
	"net/http"
	"time"

	"tongban/gateway/workday"
)

// messages holds every text of the console in Chinese (first) and English.
var messages = map[string][2]string{
	"title":                       {"通办 · 跨省通办工作台", "Tongban console"},
	"signin":                      {"登录", "Sign in"},
	"signout":                     {"退出", "Sign out"},
	"token":                       {"访问令牌", "Access token"},
	"token_help":                  {"请输入本机构发放的访问令牌（Bearer token）。", "Enter the bearer token your agency was issued."},
	"bad_token":                   {"令牌无效或已过期。", "The token is unknown or has expired."},
	"expired":                     {"会话已过期，请重新登录。", "Your session has expired; please sign in again."},
	"signed_out":                  {"已退出登录。", "You have signed out."},
	"inbox":                       {"待办件", "Inbox"},
	"outbox":                      {"已发件", "Outbox"},
	"box_more":                    {"件数较多，未全部列出：待办件按期限优先显示，已发件按时间由新到旧显示。可按状态筛选。", "Not every packet is listed: open packets come first by deadline, sent ones newest first. Filter by status to see others."},
	"new":                         {"新建申请", "New application"},
	"search":                      {"查询", "Search"},
	"ledger":                      {"账本", "Ledger"},
	"pinned_key":                  {"日志公钥", "Log key"},
	"role_submitter":              {"受理地专窗", "origin window"},
	"role_reviewer":               {"办理地审核", "reviewer"},
	"role_auditor":                {"审计", "auditor"},
	"id":                          {"编号", "ID"},
	"item":                        {"事项", "Item"},
	"origin":                      {"受理地", "Origin"},
	"destination":                 {"办理地", "Destination"},
	"status":                      {"状态", "Status"},
	"submitted":                   {"提交时间", "Submitted"},
	"deadline":                    {"办结时限", "Deadline"},
	"overdue":                     {"已超期", "overdue"},
	"paused":                      {"补正中（计时暂停）", "correction (clock paused)"},
	"none":                        {"暂无记录。", "Nothing here."},
	"all":                         {"全部", "all"},
	"choose_item":                 {"选择事项", "Choose a service item"},
	"continue":                    {"下一步", "Continue"},
	"applicant":                   {"申请人", "Applicant"},
	"applicant_type":              {"申请人类型", "Applicant type"},
	"person":                      {"个人", "person"},
	"enterprise":                  {"企业", "enterprise"},
	"applicant_name":              {"名称 / 姓名", "Name"},
	"applicant_id":                {"统一社会信用代码 / 身份证号", "Credit code / resident ID"},
	"materials":                   {"材料", "Materials"},
	"required":                    {"必交", "required"},
	"optional":                    {"选交", "optional"},
	"types":                       {"格式", "types"},
	"max_size":                    {"大小上限", "size limit"},
	"upload":                      {"上传并提交", "Upload and submit"},
	"problems":                    {"请先处理以下问题：", "Please fix these problems first:"},
	"uploading":                   {"上传中", "Uploading"},
	"receipt":                     {"受理回执", "Receipt"},
	"receipt_text":                {"材料已全部接收，摘要已记入共享账本。", "All materials were received; their digests are in the shared ledger."},
	"ledger_seq":                  {"账本序号", "Ledger seq"},
	"manifest_digest":             {"清单摘要", "Manifest digest"},
	"file":                        {"文件", "File"},
	"size":                        {"大小", "Size"},
	"digest":                      {"SHA-256", "SHA-256"},
	"download":                    {"下载", "Download"},
	"preview":                     {"预览", "Preview"},
	"license":                     {"证照", "Licence"},
	"history":                     {"办理记录", "History"},
	"time":                        {"时间", "Time"},
	"event":                       {"事件", "Event"},
	"by":                          {"操作方", "By"},
	"reason":                      {"原因", "Reason"},
	"actions":                     {"办理", "Actions"},
	"receive":                     {"接收", "Receive"},
	"return":                      {"退回补正", "Return for correction (补正)"},
	"approve":                     {"准予", "Approve"},
	"reject":                      {"不予", "Reject"},
	"deliver":                     {"送达", "Deliver"},
	"supplement":                  {"补正材料", "Supplement"},
	"upload_license":              {"上传证照", "Upload the licence"},
	"verdict":                     {"浏览器核验", "Checked in this browser"},
	"verdict_help":                {"本页在浏览器内用离线核验程序（WebAssembly）核对证据包，只信任您固定的日志公钥。", "This page checks the bundle in your browser with the offline verifier (WebAssembly), trusting only the log key you pinned."},
	"verifying":                   {"核验中…", "Verifying…"},
	"no_bundle":                   {"证据包仅供办理地审核和审计人员下载。", "Bundles are for the destination's reviewers and auditors."},
	"pin_key":                     {"固定日志公钥", "Pin the log key"},
	"pin_help":                    {"日志公钥应通过线下渠道获得，只需固定一次，保存在本浏览器中。网关无法替换已固定的公钥。", "Obtain the log key out of band and pin it once; it stays in this browser. The gateway cannot replace a pinned key."},
	"pin":                         {"固定", "Pin"},
	"pin_tofu":                    {"采用本网关公布的公钥（首次信任）", "Use the key this gateway publishes (trust on first use)"},
	"unpin":                       {"取消固定", "Unpin"},
	"current_pin":                 {"当前固定的公钥", "Pinned key"},
	"sm2_pin_help":                {"国密配置（gm）：日志的 SM2 公钥同样通过线下渠道获得（网关不公布）。固定后，证据包的检查点必须带有该公钥的有效 SM2 签名。", "gm profile: obtain the log's SM2 key out of band as well (the gateway does not publish it). Once pinned, a bundle's checkpoint must carry a valid SM2 signature by it."},
	"pinned_sm2_key":              {"日志 SM2 公钥", "Log SM2 key"},
	"current_sm2_pin":             {"当前固定的 SM2 公钥", "Pinned SM2 key"},
	"gateway_key":                 {"本网关公布的公钥", "This gateway's published key"},
	"filter":                      {"筛选", "Filter"},
	"from":                        {"起始日期", "From"},
	"to":                          {"截止日期", "To"},
	"only_overdue":                {"仅超期", "overdue only"},
	"export_csv":                  {"导出 CSV", "Export CSV"},
	"results_page":                {"条结果（本页，按提交时间）", "results on this page, by submission time"},
	"first_page":                  {"第一页", "First page"},
	"next_page":                   {"下一页", "Next page"},
	"checkpoint":                  {"签名检查点", "Signed checkpoint"},
	"entries":                     {"账本条目", "Ledger entries"},
	"leaf":                        {"叶哈希", "Leaf hash"},
	"type":                        {"类型", "Type"},
	"packet":                      {"办件", "Packet"},
	"actor":                       {"操作方", "Actor"},
	"older":                       {"更早", "Older"},
	"newer":                       {"更新", "Newer"},
	"run_verify":                  {"全面核验（账本与存储）", "Run full verification (ledger and storage)"},
	"verify_ok":                   {"核验通过：哈希链、默克尔树与签名检查点一致，所有存储对象完好。", "Verified: hash chain, Merkle tree and signed checkpoints agree, every stored object is intact."},
	"verify_bad":                  {"发现完整性问题", "Integrity problems found"},
	"objects":                     {"存储对象", "Stored objects"},
	"violations":                  {"完整性告警", "Integrity violations"},
	"first_bad_seq":               {"首个异常序号", "First bad seq"},
	"error":                       {"出错了", "Something went wrong"},
	"back":                        {"返回", "Back"},
	"language":                    {"English", "中文"},
	"status_submitted":            {"已提交", "submitted"},
	"status_received":             {"已接收", "received"},
	"status_correction_requested": {"待补正", "correction requested"},
	"status_approved":             {"已准予", "approved"},
	"status_rejected":             {"不予受理", "rejected"},
	"status_license_issued":       {"已发证", "licence issued"},
	"status_delivered":            {"已送达", "delivered"},
	"packet.submitted":            {"提交", "submitted"},
	"packet.downloaded":           {"下载", "downloaded"},
	"packet.received":             {"接收", "received"},
	"packet.returned":             {"退回补正", "returned for correction"},
	"packet.supplemented":         {"补正", "supplemented"},
	"packet.approved":             {"准予", "approved"},
	"packet.rejected":             {"不予", "rejected"},
	"license.issued":              {"发证", "licence issued"},
	"packet.delivered":            {"送达", "delivered"},
	"integrity.violation":         {"完整性告警", "integrity violation"},
	"p_missing":                   {"缺少必交材料", "missing required material"},
	"p_too_big":                   {"文件超过大小上限", "file larger than the limit"},
	"p_bad_type":                  {"文件格式不符", "file type not accepted"},
	"p_empty":                     {"文件为空", "the file is empty"},
	"p_field":                     {"请填写", "please fill in"},
	"verdict_intact":              {"完好（INTACT）", "INTACT"},
	"verdict_altered":             {"已被篡改（ALTERED）", "ALTERED"},
	"verdict_unverifiable":        {"无法核验（UNVERIFIABLE）", "UNVERIFIABLE"},
	"covered":                     {"核验范围", "What was checked"},
	"no_pin":                      {"尚未固定日志公钥，无法核验。", "No log key is pinned; nothing can be verified."},
	"beijing_time":                {"北京时间", "Beijing time"},
}

func langOf(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && c.Value == "en" {
		return "en"
	}
	return "zh"
}

func tr(lang, key string) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	if lang == "en" {
		return m[1]
	}
	return m[0]
}

// shanghaiTime formats a time in Beijing time, to the minute.
func shanghaiTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(workday.Shanghai).Format("2006-01-02 15:04")
}
