//! The shapes of Prometheus' HTTP API answers that the metrics endpoints
//! pass through, for the OpenAPI document and its clients. Source:
//! <https://prometheus.io/docs/prometheus/latest/querying/api/> (format
//! overview, expression query result formats). Berth answers 200 only with
//! `status: success`; Prometheus' errors become Berth's own error answers.

use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `success`: the only status of a 200 answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnswerStatus {
    Success,
}

/// An instant or range query's answer (`query`, `query_range`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct QueryAnswer {
    pub status: AnswerStatus,
    pub data: QueryData,
    /// Warnings of the evaluation, when Prometheus has some.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Informational notices (Prometheus 3), when it has some.
    #[serde(default)]
    pub infos: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryData {
    pub result_type: ResultType,
    pub result: QueryResult,
}

/// `matrix` from `query_range` (and range-vector instant queries),
/// `vector`, `scalar` or `string` from `query`.
#[derive(Debug, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResultType {
    Matrix,
    Vector,
    Scalar,
    String,
}

/// Series for `matrix` and `vector`; one point for `scalar` and `string`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum QueryResult {
    Series(Vec<Series>),
    Point(Point),
}

/// `[time, value]`: Unix seconds (with a fraction) and the sample's value
/// as a string (`"NaN"`, `"+Inf"` and `"-Inf"` included).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Point(pub f64, pub String);

/// One series: its labels and its sample (`vector`) or samples (`matrix`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Series {
    pub metric: BTreeMap<String, String>,
    /// For `vector`.
    pub value: Option<Point>,
    /// For `matrix`, oldest first.
    pub values: Option<Vec<Point>>,
}

/// The `series` answer: the label sets of the matching series.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SeriesAnswer {
    pub status: AnswerStatus,
    pub data: Vec<BTreeMap<String, String>>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The `labels` and `label/{label}/values` answers: names or values, sorted.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NamesAnswer {
    pub status: AnswerStatus,
    pub data: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_documented_answers_parse() {
        // The examples of Prometheus' API documentation.
        let vector: QueryAnswer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},"value":[1435781451.781,"1"]}]}}"#,
        )
        .unwrap();
        assert_eq!(vector.data.result_type, ResultType::Vector);
        assert!(matches!(&vector.data.result, QueryResult::Series(s) if s[0].value.is_some()));
        let matrix: QueryAnswer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"job":"node"},"values":[[1435781430.781,"1"],[1435781445.781,"NaN"]]}]},"warnings":["w"]}"#,
        )
        .unwrap();
        assert!(
            matches!(&matrix.data.result, QueryResult::Series(s) if s[0].values.as_ref().unwrap().len() == 2)
        );
        assert_eq!(matrix.warnings, ["w"]);
        let scalar: QueryAnswer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"2"]}}"#,
        )
        .unwrap();
        assert!(matches!(scalar.data.result, QueryResult::Point(Point(_, ref v)) if v == "2"));
        let series: SeriesAnswer = serde_json::from_str(
            r#"{"status":"success","data":[{"__name__":"up","job":"prometheus"}]}"#,
        )
        .unwrap();
        assert_eq!(series.data[0]["job"], "prometheus");
        let names: NamesAnswer =
            serde_json::from_str(r#"{"status":"success","data":["__name__","job"]}"#).unwrap();
        assert_eq!(names.data, ["__name__", "job"]);
        assert!(serde_json::from_str::<NamesAnswer>(r#"{"status":"error","data":[]}"#).is_err());
    }
}
