"""Every title and text of the dashboards, in Chinese and English.

One table, two columns: a dashboard module asks ``tr("key")`` and never writes a
user-visible string itself, so the two builds cannot drift apart (a key missing
in one language fails the build, not the control room).
"""

from __future__ import annotations

from dataclasses import dataclass

from hazmon.plant.standards import Grade, Tier

__all__ = ["LOCALES", "Texts"]

LOCALES: tuple[str, ...] = ("zh", "en")

# key -> (zh, en)
_T: dict[str, tuple[str, str]] = {
    # folders (provisioning) and dashboards
    "dash.overview": ("控制室总览", "Control room overview"),
    "dash.detail": ("重大危险源详情", "Hazard source detail"),
    "dash.health": ("传感器健康", "Sensor health"),
    "dash.bureau": ("监管总览", "Bureau overview"),
    "dash.register": ("评估报告登记", "Assessment register"),
    "dash.bp_region": ("监管平台 · 辖区总览", "Bureau platform · Region overview"),
    "dash.bp_supervision": ("监管平台 · 隐患排查治理统计", "Bureau platform · Supervision figures"),
    # variables
    "var.enterprise": ("企业", "Enterprise"),
    "var.hazard_source": ("重大危险源", "Hazard source"),
    "var.region": ("行政区域", "Region"),
    "region.all": ("全部区域", "All regions"),
    # overview
    "p.tiles": ("重大危险源 · 当前最高预警", "Hazard sources · worst active warning"),
    "p.active_alarms": ("当前报警", "Active alarms"),
    "p.key_sensors": ("关键监测点", "Key sensors"),
    "p.unacked": ("未确认报警", "Unacknowledged alarms"),
    "p.stale_count": ("通信中断的传感器", "Stale sensors"),
    "p.alarms_last_hour": ("近 1 小时新报警", "New alarms, last hour"),
    "p.alarm_rate": ("每小时报警数", "Alarms per hour"),
    # detail
    "p.grade": ("等级", "Grade"),
    "p.r_value": ("R 值", "R value"),
    "p.source_alarms": ("当前报警数", "Active alarms"),
    "p.level": ("液位", "Level"),
    "p.temperature": ("温度", "Temperature"),
    "p.pressure": ("压力", "Pressure"),
    "p.gas_combustible": ("可燃气体", "Combustible gas"),
    "p.gas_toxic": ("有毒气体", "Toxic gas"),
    "p.predictions": ("趋势预测: 预计越限时间", "Trend: predicted limit crossings"),
    "p.source_alarm_list": ("本危险源报警", "Alarms of this hazard source"),
    "anno.alarms": ("报警", "Alarms"),
    "limit.first": ("一级报警", "first level"),
    "limit.second": ("二级报警", "second level"),
    # health
    "p.sensors_total": ("传感器总数", "Sensors"),
    "p.bad_count": ("质量坏", "Bad quality"),
    "p.out_of_range_count": ("超量程", "Out of range"),
    "p.no_data_count": ("无数据", "No data"),
    "p.sensor_table": ("传感器状态", "Sensor status"),
    "p.fault_alarms": (
        "仪表故障报警 (卡值、跳变、超量程、质量坏、振荡)",
        "Instrument fault alarms (stuck, spike, out of range, bad quality, chattering)",
    ),
    "p.completeness": ("数据完整率 (按危险源)", "Data completeness by hazard source"),
    # bureau
    "p.enterprises": ("企业数", "Enterprises"),
    "p.by_grade": ("重大危险源 (按等级)", "Hazard sources by grade"),
    "p.escalated_by_tier": ("上报预警: 按级别与处置状态", "Escalated warnings by tier and handling"),
    "p.escalated_list": ("上报预警明细", "Escalated warnings"),
    "p.overdue": ("评估逾期与备案逾期", "Overdue assessments and filings"),
    "p.kpi_rate": ("每小时报警数 (目标 ≤ {a}, 上限 {m})", "Alarms per hour (target ≤ {a}, max {m})"),
    "p.kpi_table": ("报警管理指标 (按企业)", "Alarm KPIs by enterprise"),
    # bureau platform (the bureau daemon's database)
    "p.bp_enterprises": ("辖区企业数", "Enterprises in the region"),
    "p.bp_silent_count": ("失联企业", "Silent enterprises"),
    "p.bp_online": ("在线率 (近 24 小时)", "Online rate (last 24 h)"),
    "p.bp_open_by_colour": ("未消警预警 (按级别)", "Open warnings by colour"),
    "p.bp_regions": ("辖区概况 (按区县)", "Region overview by county"),
    "p.bp_ranking": ("企业风险排名 (近 24 小时)", "Enterprises ranked by risk (last 24 h)"),
    "p.bp_silent": ("失联企业明细", "Silent enterprises: detail"),
    "p.bp_ages": ("未消警预警: 级别与时长", "Open warnings by colour and age"),
    "p.bp_open": ("未消警预警明细", "Open warnings"),
    "var.period": ("统计期", "Period"),
    "p.bs_totals": ("本期汇总", "The period in figures"),
    "p.bs_counties": ("按区县", "By county"),
    "p.bs_enterprises": (
        "按企业: 隐患、督办、包保履职、安全承诺",
        "By enterprise: hidden dangers, supervision, duties, commitments",
    ),
    "c.screened": ("开展排查企业数", "Enterprises screened"),
    "c.found_general": ("一般隐患", "General hidden dangers"),
    "c.found_major": ("重大隐患", "Major hidden dangers"),
    "c.found": ("排查隐患数", "Hidden dangers found"),
    "c.rectified": ("已整改", "Rectified"),
    "c.rectification_rate": ("整改率", "Rectification rate"),
    "c.supervisions_opened": ("本期挂牌督办", "Supervisions opened"),
    "c.supervisions_open": ("挂牌督办中", "Under supervision"),
    "c.supervisions_overdue": ("督办逾期", "Supervisions overdue"),
    "c.overdue_dangers": ("逾期未整改", "Overdue"),
    "c.duty_due": ("包保应检", "Duty checks due"),
    "c.duty_done": ("包保已检", "Duty checks done"),
    "c.duty_completion": ("包保履职率", "Duty check completion"),
    "c.commitment_due": ("应承诺天数", "Commitment days due"),
    "c.commitment_rate": ("承诺率", "Commitment rate"),
    "c.commitment_on_time": ("按时承诺率", "On-time commitment rate"),
    "c.county": ("区县", "County"),
    "c.region_code": ("区划代码", "Region code"),
    "c.rank": ("排名", "Rank"),
    "c.enterprises": ("企业数", "Enterprises"),
    "c.silent": ("失联", "Silent"),
    "c.online": ("在线率", "Online rate"),
    "c.warnings_open": ("未消警预警", "Open warnings"),
    "c.open_weight": ("预警权重", "Warning weight"),
    "c.risk": ("风险值", "Risk"),
    "c.red": ("红色", "Red"),
    "c.orange": ("橙色", "Orange"),
    "c.yellow": ("黄色", "Yellow"),
    "c.blue": ("蓝色", "Blue"),
    "c.colour": ("预警级别", "Colour"),
    "c.warning_kind": ("预警类型", "Warning kind"),
    "c.last_seen": ("最后上报", "Last message"),
    "c.silent_for": ("失联时长", "Silent for"),
    "c.why": ("原因", "Why"),
    "c.warning_state": ("预警状态", "Warning state"),
    "c.raised": ("预警时间", "Raised"),
    "c.cleared": ("原因消除", "Cause cleared"),
    "c.overdue": ("超期未消警", "Overdue"),
    "c.age_1h": ("1 小时内", "< 1 h"),
    "c.age_1d": ("1 天内", "< 1 day"),
    "c.age_7d": ("7 天内", "< 7 days"),
    "c.age_older": ("7 天以上", "Older"),
    "c.text": ("预警内容", "Warning"),
    "v.link_down": ("通信中断", "Link down"),
    "v.plant_silent": ("装置无数据", "Plant silent"),
    "v.no_message": ("超时未上报", "No message"),
    "v.ws_pushed": ("已推送", "Pushed"),
    "v.ws_verified": ("已核查", "Verified"),
    "v.ws_fed_back": ("已反馈", "Fed back"),
    # register
    "p.register": ("评估报告登记表", "Assessment register"),
    "p.overdue_count": ("逾期: 评估 · 备案", "Overdue: reassessment · filing"),
    # columns
    "c.enterprise": ("企业", "Enterprise"),
    "c.hazard_source": ("危险源", "Hazard source"),
    "c.code": ("编号", "Code"),
    "c.name": ("名称", "Name"),
    "c.sensor": ("位号", "Tag"),
    "c.description": ("说明", "Description"),
    "c.kind": ("类型", "Kind"),
    "c.value": ("当前值", "Value"),
    "c.unit": ("单位", "Unit"),
    "c.state": ("状态", "State"),
    "c.tier": ("预警级别", "Tier"),
    "c.condition": ("报警类型", "Condition"),
    "c.acked": ("已确认", "Acknowledged"),
    "c.activated": ("报警时间", "Activated"),
    "c.age": ("持续", "Age"),
    "c.limit": ("限值", "Limit"),
    "c.limit_name": ("趋向限值", "Heading for"),
    "c.message": ("信息", "Message"),
    "c.last_time": ("最后数据", "Last reading"),
    "c.not_good": ("非良好读数", "Non-good readings"),
    "c.completeness": ("完整率", "Completeness"),
    "c.trend": ("变化率 /分钟", "Rate /min"),
    "c.crossing": ("预计越限时间", "Predicted crossing"),
    "c.handling": ("处置状态", "Handling"),
    "c.count": ("数量", "Count"),
    "c.grade": ("等级", "Grade"),
    "c.r": ("R 值", "R"),
    "c.report_date": ("报告日期", "Report date"),
    "c.assessor": ("评估单位", "Assessor"),
    "c.assessed_r": ("评估 R 值", "Assessed R"),
    "c.assessed_grade": ("评估等级", "Assessed grade"),
    "c.filed_on": ("备案日期", "Filed on"),
    "c.next_due": ("下次评估", "Next due"),
    "c.filing_deadline": ("备案期限", "Filing deadline"),
    "c.reassessment_overdue": ("评估逾期", "Reassessment overdue"),
    "c.filing_overdue": ("备案逾期", "Filing overdue"),
    "c.avg_per_hour": ("平均每小时", "Avg per hour"),
    "c.peak_per_hour": ("峰值每小时", "Peak per hour"),
    "c.floods": ("报警泛滥", "Floods"),
    "c.standing": ("常驻报警", "Standing"),
    "c.chattering": ("振荡报警", "Chattering"),
    # value mappings
    "v.normal": ("正常", "Normal"),
    "v.no_data": ("无数据", "No data"),
    "v.stale": ("通信中断", "Stale"),
    "v.bad": ("质量坏", "Bad quality"),
    "v.uncertain": ("质量不确定", "Uncertain"),
    "v.out_of_range": ("超量程", "Out of range"),
    "v.ok": ("正常", "OK"),
    "v.yes": ("是", "Yes"),
    "v.no": ("否", "No"),
    "v.pending": ("待接收", "Pending"),
    "v.received": ("已接收", "Received"),
    "v.verified": ("已核实", "Verified"),
    "v.feedback": ("已反馈", "Feedback given"),
    "v.closed": ("已消警", "Closed"),
    "v.not_major": ("非重大危险源", "Not a major hazard source"),
    "v.no_assessment": ("无评估记录", "No assessment on record"),
    "s.active_unacked": ("报警未确认", "Active, unacknowledged"),
    "s.active_acked": ("报警已确认", "Active, acknowledged"),
    "s.rtn_unacked": ("已恢复未确认", "Returned, unacknowledged"),
}


@dataclass(frozen=True, slots=True)
class Texts:
    """The texts of one locale."""

    locale: str

    def __post_init__(self) -> None:
        if self.locale not in LOCALES:
            raise ValueError(f"locale '{self.locale}' is not one of {', '.join(LOCALES)}")

    def __call__(self, key: str) -> str:
        zh, en = _T[key]
        return zh if self.locale == "zh" else en

    def grade(self, g: Grade) -> str:
        return g.zh if self.locale == "zh" else f"Grade {int(g)}"

    def tier(self, t: Tier) -> str:
        return f"{t.zh}色预警" if self.locale == "zh" else f"{t.colour.capitalize()}"

    @property
    def message_column(self) -> str:
        """The alarm table's message column in this language."""
        return "message_zh" if self.locale == "zh" else "message_en"

    @property
    def enterprise_name_column(self) -> str:
        return "name" if self.locale == "zh" else "name_en"
